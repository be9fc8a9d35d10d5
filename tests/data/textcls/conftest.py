from pathlib import Path

import pytest

REAL = Path(__file__).resolve().parents[3].parent / "shared" / "real-data"

real_data = pytest.mark.skipif(not REAL.is_dir(), reason=f"real data not at {REAL}")
