"""The Hugging Face "hftransformersv2" shape: one standard-type dict parameter whose sample has exactly the
keys ``input_string`` and ``parameters`` (inference-schema skips conversion only for a positional dict of
that shape; both servers pass parameters by keyword)."""
from inference_schema.parameter_types.standard_py_parameter_type import StandardPythonParameterType
from inference_schema.schema_decorators import input_schema, output_schema


def init():
    pass


@input_schema("input_data", StandardPythonParameterType({"input_string": ["the sky is"],
                                                          "parameters": {"top_k": 5, "temperature": 0.5}}))
@output_schema(StandardPythonParameterType([{"generated_text": "the sky is blue"}]))
def run(input_data):
    return [{"type": type(input_data).__name__, "keys": sorted(input_data), "echo": input_data}]
