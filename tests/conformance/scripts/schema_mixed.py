"""A sample holding a list of mixed element types: swagger v2 cannot describe it, so only v3/3.1 exist."""
from inference_schema.parameter_types.standard_py_parameter_type import StandardPythonParameterType
from inference_schema.schema_decorators import input_schema


def init():
    pass


@input_schema("row", StandardPythonParameterType([1, "two", 3.0]))
def run(row):
    return {"row": row, "n": len(row)}
