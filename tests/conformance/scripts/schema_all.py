"""inference-schema: numpy, pandas and standard types, an optional parameter and an output schema."""
import numpy as np
import pandas as pd
from inference_schema.parameter_types.numpy_parameter_type import NumpyParameterType
from inference_schema.parameter_types.pandas_parameter_type import PandasParameterType
from inference_schema.parameter_types.standard_py_parameter_type import StandardPythonParameterType
from inference_schema.schema_decorators import input_schema, output_schema


def init():
    pass


@input_schema("data", NumpyParameterType(np.array([[1.0, 2.0]])))
@input_schema("df", PandasParameterType(pd.DataFrame({"a": [1], "b": ["x"]})))
@input_schema("k", StandardPythonParameterType(3))
@output_schema(StandardPythonParameterType({"sum": 1.5, "rows": 1}))
def run(data, df, k=1):
    if k == 99:
        raise RuntimeError("k is 99")
    return {"sum": float(data.sum()) + k, "rows": int(len(df))}
