"""Swagger 2.0 / OpenAPI 3.0.3 / 3.1.0 documents for ``/swagger.json``, generated or user-provided."""

from __future__ import annotations

import copy
import json
import logging
import os
from typing import Any

log = logging.getLogger("nbdeploy.server.swagger")

VERSIONS = {"2": "2", "2.0": "2", "3": "3", "3.0": "3", "3.1": "3.1"}
USER_FILES = {"2": ("swagger.json", "swagger2.json"), "3": ("swagger3.json",), "3.1": ("swagger3.1.json",)}
_EMPTY = {"type": "object", "example": {}}
_ERROR = {"type": "object", "properties": {"message": {"type": "string"}}}
_BEARER = {"type": "apiKey", "name": "Authorization", "in": "header", "description": "For example: Bearer abc123"}
_HEALTH_DESC = "Simple health check endpoint to ensure the service is up at any given point."
_HEALTH_OK = "If service is up and running, this response will be returned with the content 'Healthy'"
_SCORE_DESC = "Run web service's model and get the prediction output"
_INPUT_DESC = "The input payload for executing the real-time machine learning service."
_OK_DESC = "The service processed the input correctly and provided a result prediction, if applicable."
_ERR_DESC = "The service failed to execute due to an error."


def _info(name: str, version: str) -> dict[str, str]:
    return {
        "title": name,
        "description": f"API specification for the Azure Machine Learning service {name}",
        "version": version,
    }


def v2(name: str, version: str, prefix: str, inp: dict, out: dict) -> dict[str, Any]:
    """The Swagger 2.0 document."""
    err = {"description": _ERR_DESC, "schema": {"$ref": "#/definitions/ErrorResponse"}}
    return {
        "swagger": "2.0",
        "info": _info(name, version),
        "schemes": ["https"],
        "consumes": ["application/json"],
        "produces": ["application/json"],
        "securityDefinitions": {"Bearer": _BEARER},
        "paths": {
            f"{prefix}/": {
                "get": {
                    "operationId": "ServiceHealthCheck",
                    "description": _HEALTH_DESC,
                    "responses": {
                        "200": {
                            "description": _HEALTH_OK,
                            "schema": {"type": "string"},
                            "examples": {"application/json": "Healthy"},
                        },
                        "default": err,
                    },
                }
            },
            f"{prefix}/score": {
                "post": {
                    "operationId": "RunMLService",
                    "description": _SCORE_DESC,
                    "security": [{"Bearer": []}],
                    "parameters": [
                        {
                            "name": "serviceInputPayload",
                            "in": "body",
                            "description": _INPUT_DESC,
                            "schema": {"$ref": "#/definitions/ServiceInput"},
                        }
                    ],
                    "responses": {
                        "200": {"description": _OK_DESC, "schema": {"$ref": "#/definitions/ServiceOutput"}},
                        "default": err,
                    },
                }
            },
            f"{prefix}/swagger.json": {
                "get": {
                    "operationId": "GetSwaggerSpec",
                    "description": "Get the Swagger specification.",
                    "parameters": [
                        {"name": "version", "in": "query", "required": False, "type": "integer", "enum": [2, 3]}
                    ],
                    "responses": {
                        "200": {"description": "The Swagger specification.", "schema": {"type": "string"}},
                        "default": err,
                    },
                }
            },
        },
        "definitions": {"ServiceInput": inp, "ServiceOutput": out, "ErrorResponse": _ERROR},
    }


def v3(name: str, version: str, prefix: str, inp: dict, out: dict, openapi: str = "3.0.3") -> dict[str, Any]:
    """The OpenAPI 3.x document."""
    err = {
        "description": _ERR_DESC,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorResponse"}}},
    }
    return {
        "openapi": openapi,
        "info": _info(name, version),
        "security": [{"Bearer": []}],
        "paths": {
            f"{prefix}/": {
                "get": {
                    "operationId": "ServiceHealthCheck",
                    "description": _HEALTH_DESC,
                    "responses": {
                        "200": {
                            "description": _HEALTH_OK,
                            "content": {"text/plain": {"schema": {"type": "string", "example": "Healthy"}}},
                        },
                        "default": err,
                    },
                }
            },
            f"{prefix}/score": {
                "post": {
                    "operationId": "RunMLService",
                    "description": _SCORE_DESC,
                    "security": [{"Bearer": []}],
                    "requestBody": {
                        "description": _INPUT_DESC,
                        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ServiceInput"}}},
                    },
                    "responses": {
                        "200": {
                            "description": _OK_DESC,
                            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ServiceOutput"}}},
                        },
                        "default": err,
                    },
                }
            },
            f"{prefix}/swagger.json": {
                "get": {
                    "operationId": "GetSwaggerSpec",
                    "description": "Get the Swagger specification.",
                    "parameters": [
                        {
                            "name": "version",
                            "in": "query",
                            "required": False,
                            "schema": {"type": "integer", "enum": [2, 3]},
                        }
                    ],
                    "responses": {
                        "200": {
                            "description": "The Swagger specification.",
                            "content": {"text/plain": {"schema": {"type": "string"}}},
                        },
                        "default": err,
                    },
                }
            },
        },
        "components": {
            "schemas": {"ServiceInput": inp, "ServiceOutput": out, "ErrorResponse": _ERROR},
            "securitySchemes": {"Bearer": _BEARER},
        },
    }


def _has_mixed_list(value: Any) -> bool:
    if isinstance(value, dict):
        return any(_has_mixed_list(v) for v in value.values())
    if isinstance(value, list):
        if len({type(v) for v in value}) > 1:
            return True
        return any(_has_mixed_list(v) for v in value)
    return False


def build(
    run: Any, decorated: bool, name: str, version: str, prefix: str, app_root: str, entry_dir: str | None = None
) -> dict[str, bytes | None]:
    """Map of version key (``2``, ``3``, ``3.1``) to the document's bytes (``None``: not supported)."""
    inp, out = copy.deepcopy(_EMPTY), copy.deepcopy(_EMPTY)
    versions = {"2", "3", "3.1"}
    if decorated:
        try:
            from inference_schema.schema_util import get_input_schema, get_output_schema

            inp = get_input_schema(run) or inp
            out = get_output_schema(run) or out
        except Exception:
            log.exception("Could not generate swagger from the inference-schema decorators")
        if _has_mixed_list(inp.get("example")) or _has_mixed_list(out.get("example")):
            versions.discard("2")
    docs: dict[str, bytes | None] = {
        "2": json.dumps(v2(name, version, prefix, inp, out)).encode() if "2" in versions else None,
        "3": json.dumps(v3(name, version, prefix, inp, out)).encode(),
        "3.1": json.dumps(v3(name, version, prefix, inp, out, "3.1.0")).encode(),
    }
    for key, files in USER_FILES.items():
        for folder in dict.fromkeys([app_root, entry_dir] if entry_dir else [app_root]):
            found = next((os.path.join(folder, f) for f in files if os.path.isfile(os.path.join(folder, f))), None)
            if found:
                with open(found, "rb") as fh:
                    docs[key] = fh.read()
                log.info("Using the user's swagger file %s for version %s", found, key)
                break
    return docs
