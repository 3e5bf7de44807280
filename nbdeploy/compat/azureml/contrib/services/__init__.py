"""Mirror of ``azureml.contrib.services``: ``aml_request`` and ``aml_response`` are the scoring server's own modules."""
