"""The CPU-only install route of the README names the pinned versions; nothing in mlbench
needs the CUDA-only packages (nvidia-*, triton) that the CPU route leaves out."""

from __future__ import annotations

import re

from tests.conftest import REPO

CPU_INDEX = "https://download.pytorch.org/whl/cpu"


def _pins() -> dict[str, str]:
    text = (REPO / "constraints.txt").read_text()
    return dict(re.findall(r"^([A-Za-z0-9_.-]+)==(\S+)", text, re.M))


def test_the_cpu_route_installs_the_pinned_torch_and_torchvision():
    readme = (REPO / "README.md").read_text()
    (line,) = [ln for ln in readme.splitlines() if CPU_INDEX in ln and ln.startswith("pip")]
    pins = _pins()
    wanted = {name: re.search(rf"\b{name}==(\S+)", line).group(1)
              for name in ("torch", "torchvision")}
    assert wanted == {name: pins[name] for name in wanted}
    assert "pip install -c constraints.txt -e ." in readme  # then everything else, pinned


def test_mlbench_imports_nothing_cuda_only():
    sources = [p.read_text() for p in (REPO / "mlbench").rglob("*.py")]
    assert not [s for s in sources if re.search(r"^\s*(import|from)\s+(triton|nvidia)\b", s,
                                                 re.M)]
