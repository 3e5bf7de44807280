"""Mirror of ``azureml.contrib``."""
