"""Mirror of ``azureml.pipeline``: only ``steps`` (ParallelRunConfig, ParallelRunStep) for batch inference."""
