"""inference-schema with standard Python types only, and request_headers."""
from inference_schema.parameter_types.standard_py_parameter_type import StandardPythonParameterType
from inference_schema.schema_decorators import input_schema


def init():
    pass


@input_schema("text", StandardPythonParameterType("hello"))
@input_schema("scale", StandardPythonParameterType(1.0))
def run(text, scale, request_headers):
    return {"text": text.upper(), "scale": scale * 2, "ua": "User-Agent" in request_headers}
