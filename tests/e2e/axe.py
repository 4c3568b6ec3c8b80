"""axe-core (npm `axe-core`, the version pinned in package.json and package-lock.json beside this
file) run in the page under test. `.ci/run` installs it with `npm ci`; a developer's first
browser run does the same when it is missing. It goes into node_modules/ here, which git ignores.

The script is evaluated through the browser's devtools protocol, so the page's own CSP (no
inline script) still holds for everything the page itself runs.
"""

import functools
import shutil
import subprocess
from pathlib import Path

HERE = Path(__file__).resolve().parent
AXE_SCRIPT = HERE / "node_modules" / "axe-core" / "axe.min.js"
REPORTED = ("serious", "critical")


@functools.cache
def axe_source() -> str:
    if not AXE_SCRIPT.exists():
        npm = shutil.which("npm")
        assert npm, "npm is needed to install axe-core for the accessibility checks"
        subprocess.run(
            [npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=HERE, check=True
        )
    return AXE_SCRIPT.read_text()


def serious_violations(page) -> list[str]:
    """axe's serious and critical findings on the page as it is now, one line each."""
    if not page.evaluate("() => typeof window.axe === 'object'"):
        page.evaluate(axe_source())
    results = page.evaluate("() => axe.run(document, {resultTypes: ['violations']})")
    return [
        f"{violation['id']} ({violation['impact']}): {violation['help']} at "
        + ", ".join(" ".join(node["target"]) for node in violation["nodes"][:3])
        for violation in results["violations"]
        if violation["impact"] in REPORTED
    ]


def assert_accessible(page, where: str = "") -> None:
    found = serious_violations(page)
    assert found == [], f"axe-core on {where or page.url}:\n" + "\n".join(found)
