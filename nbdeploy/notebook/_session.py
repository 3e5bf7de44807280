"""What the magics remember within one kernel: the chosen workspace and the current entry script."""

from __future__ import annotations

import atexit
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from nbdeploy.specs import InferenceConfig
    from nbdeploy.workspace import Workspace


@dataclass
class Session:
    """State shared by the magics of one shell."""

    workspace_path: Path | None = None
    entry_script: Path | None = None
    """The last script written by ``%%score_script``."""
    inference_config: InferenceConfig | None = None
    """The last ``%%inference_config``."""
    temporary: dict[str, Path] = field(default_factory=dict)
    """Services deployed with ``%deploy --temporary`` (name -> workspace), deleted when the kernel exits."""

    def delete_on_exit(self, name: str, workspace: Workspace) -> None:
        """Delete service ``name`` when this kernel exits normally (a papermill run that failed included)."""
        if not self.temporary:
            atexit.register(self._delete_temporary)
        self.temporary[name] = workspace.path

    def _delete_temporary(self) -> None:
        from nbdeploy.errors import NbdeployError
        from nbdeploy.service import Webservice

        for name, path in list(self.temporary.items()):
            try:
                Webservice(name, path).delete()
            except NbdeployError:
                pass  # deleted already

    def workspace(self) -> Workspace:
        """The workspace chosen with ``%nbdeploy_workspace``, else the library default."""
        from nbdeploy.workspace import as_workspace

        return as_workspace(self.workspace_path)

    def use_workspace(self, path: str | os.PathLike[str]) -> Workspace:
        """Open (creating when missing or empty) the workspace at ``path`` and make it this kernel's default."""
        from nbdeploy.workspace import DB_NAME, Workspace, as_workspace

        folder = Path(path).expanduser().absolute()
        if not (folder / DB_NAME).is_file():
            Workspace.create(folder)
        self.workspace_path = folder
        # library calls without a workspace= argument in this kernel use the same one
        os.environ["NBDEPLOY_WORKSPACE"] = str(folder)
        return as_workspace(folder)
