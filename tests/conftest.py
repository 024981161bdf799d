from pathlib import Path

import pytest

GOLDEN = Path(__file__).resolve().parent / "data" / "golden"


@pytest.fixture(scope="session")
def golden_dir() -> Path:
    """The vendored MotorNet 0.3.0 reference cases (`<case>.json` + `<case>.npz`, see its README.md)."""
    if not any(GOLDEN.glob("*.json")):
        pytest.fail(f"golden cases missing: expected MotorNet 0.3.0 reference files (*.json + *.npz) in {GOLDEN}; "
                    "they are part of the repository (tests/data/golden)", pytrace=False)
    return GOLDEN
