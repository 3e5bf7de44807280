"""Is the built image for the device's OS/architecture? (pure; the refusal happens before anything is shipped)"""

from __future__ import annotations

from collections.abc import Mapping

from nbdeploy.remote.ship import PlatformMismatch


def platform_problems(image: str, image_platform: tuple[str, str], devices: Mapping[str, tuple[str, str]]) -> list[str]:
    """One line per device whose ``(os, arch)`` differs from the image's (unknown values are not refused)."""
    want_os, want_arch = (image_platform[0] or "linux", image_platform[1])
    problems = []
    for name, (os_name, arch) in sorted(devices.items()):
        have_os = os_name or "linux"
        if want_arch and arch and (want_os, want_arch) != (have_os, arch):
            problems.append(f"{name} runs {have_os}/{arch}")
    return problems


def refuse_foreign_platforms(
    image: str, image_platform: tuple[str, str], devices: Mapping[str, tuple[str, str]]
) -> None:
    """PlatformMismatch naming every device that cannot run ``image``."""
    problems = platform_problems(image, image_platform, devices)
    if problems:
        want = f"{image_platform[0] or 'linux'}/{image_platform[1]}"
        raise PlatformMismatch(
            f"Image {image} is built for {want} but {', '.join(problems)}; nothing was shipped. Build for the "
            f"devices' platform (docker build --platform) or leave those devices out (--devices / --device-selector)."
        )
