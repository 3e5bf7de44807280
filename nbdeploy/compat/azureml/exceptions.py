"""Mirror of ``azureml.exceptions``: v1's exception names, as branches of nbdeploy's exception tree.

v1 code catches these (``except WebserviceException:`` around ``Webservice(ws, name)``, ``except
ComputeTargetException:`` around ``ComputeTarget(ws, name)``). The compat layer raises nbdeploy's own errors
re-typed so that they are *both*: ``ServiceNotFound`` and ``WebserviceException``, ``ModelNotFound`` and
``WebserviceException``, ... (see :func:`as_v1`). ``except NbdeployError`` keeps catching everything.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

from nbdeploy.errors import NbdeployError

F = TypeVar("F", bound=Callable[..., Any])


class AzureMLException(NbdeployError):
    """v1's root exception."""


class UserErrorException(AzureMLException):
    """v1: the caller passed something unusable."""


class WebserviceException(AzureMLException):
    """v1: anything a model, image or webservice call raises."""


class ComputeTargetException(AzureMLException):
    """v1: anything a compute target call raises."""


class ModelNotFoundException(WebserviceException):
    """v1: ``Model.get_model_path`` found nothing."""


class ProjectSystemException(AzureMLException):
    """v1: ``Workspace.from_config``/``get`` found no workspace."""


class NotSupportedInNbdeploy(AzureMLException):
    """A v1 feature nbdeploy refuses on purpose (training, provisioning cloud resources); says what to do."""


_MIXED: dict[tuple[type, type], type[NbdeployError]] = {}


def as_v1(exc: NbdeployError, v1_class: type[AzureMLException]) -> NbdeployError:
    """``exc`` re-typed as a subclass of both its own class and ``v1_class`` (same message and attributes)."""
    if isinstance(exc, v1_class):
        return exc
    key = (type(exc), v1_class)
    mixed = _MIXED.get(key)
    if mixed is None:
        mixed = type(type(exc).__name__, (type(exc), v1_class), {"__module__": type(exc).__module__})
        _MIXED[key] = mixed
    new = mixed.__new__(mixed)
    new.__dict__.update(exc.__dict__)
    new.args = exc.args
    return new


def raises_v1(v1_class: type[AzureMLException]) -> Callable[[F], F]:
    """Decorator: NbdeployErrors leaving the function are re-typed with :func:`as_v1`."""

    def wrap(func: F) -> F:
        @functools.wraps(func)
        def inner(*args: Any, **kwargs: Any) -> Any:
            try:
                return func(*args, **kwargs)
            except NbdeployError as exc:
                raise as_v1(exc, v1_class).with_traceback(exc.__traceback__) from exc.__cause__

        return inner  # type: ignore[return-value]

    return wrap


__all__ = [
    "AzureMLException",
    "ComputeTargetException",
    "ModelNotFoundException",
    "NotSupportedInNbdeploy",
    "ProjectSystemException",
    "UserErrorException",
    "WebserviceException",
    "as_v1",
    "raises_v1",
]
