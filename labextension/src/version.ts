/** The version of this lab extension; it must equal the Python package's (`nbdeploy.__version__`). */
export const FRONTEND_VERSION = '0.1.0';

/** The REST API version this panel speaks (`nbdeploy.jupyter.api.API_VERSION`). */
export const API_VERSION = 1;
