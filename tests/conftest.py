import os
from pathlib import Path
import matplotlib
import pytest

matplotlib.use('Agg')
os.environ.setdefault('MEDIMB_OFFLINE', '1')
SHARED = Path(__file__).resolve().parents[1].parent / 'shared' / 'data'

@pytest.fixture(autouse=True)
def _isolated_results(tmp_path, monkeypatch):
    "Every test writes results and caches into its own temporary folders."
    monkeypatch.setenv('MEDIMB_RESULTS', str(tmp_path / 'results'))
    monkeypatch.setenv('MEDIMB_CACHE', str(tmp_path / 'cache'))

@pytest.fixture
def pneumoniamnist():
    path = SHARED / 'pneumoniamnist.npz'
    if not path.exists():
        pytest.fail(f"real-data test needs {path} (PneumoniaMNIST in MedMNIST .npz layout) beside the project, in ../shared/data/")
    return path
