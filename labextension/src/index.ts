/** nbdeploy's JupyterLab extension: a left side panel with the model registry and the services, live. */

import { ILabShell, ILayoutRestorer, JupyterFrontEnd, JupyterFrontEndPlugin } from '@jupyterlab/application';
import { ICommandPalette } from '@jupyterlab/apputils';
import { LabIcon } from '@jupyterlab/ui-components';

import { NbdeployPanel } from './panel';

const ICON_SVG =
  '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 24 24"><g class="jp-icon3" fill="#616161">' +
  '<path d="M12 2 3 7v10l9 5 9-5V7l-9-5zm0 2.3L18.6 8 12 11.7 5.4 8 12 4.3zM5 9.7l6 3.4v6.6l-6-3.3V9.7zm8 10v-6.6l6-3.4v6.7l-6 3.3z"/>' +
  '</g></svg>';

export const nbdeployIcon = new LabIcon({ name: 'nbdeploy:panel', svgstr: ICON_SVG });

const plugin: JupyterFrontEndPlugin<void> = {
  id: 'nbdeploy:panel',
  description: 'nbdeploy side panel: models, services, live state, logs, test, update, roll back, delete, deploy',
  autoStart: true,
  requires: [ILabShell],
  optional: [ILayoutRestorer, ICommandPalette],
  activate: (
    app: JupyterFrontEnd,
    shell: ILabShell,
    restorer: ILayoutRestorer | null,
    palette: ICommandPalette | null
  ) => {
    const panel = new NbdeployPanel();
    panel.title.icon = nbdeployIcon;
    shell.add(panel, 'left', { rank: 850 });
    restorer?.add(panel, 'nbdeploy-panel');
    app.commands.addCommand('nbdeploy:open-panel', {
      label: 'nbdeploy: Show models and services',
      execute: () => shell.activateById(panel.id)
    });
    palette?.addItem({ command: 'nbdeploy:open-panel', category: 'nbdeploy' });
  }
};

export default plugin;
