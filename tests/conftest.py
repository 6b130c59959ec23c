import os
from pathlib import Path
import matplotlib
import pytest

matplotlib.use('Agg')
os.environ.setdefault('MEDIMB_OFFLINE', '1')
SHARED = Path(__file__).resolve().parents[1].parent / 'shared' / 'data'
PNEUMONIAMNIST_URL = 'https://zenodo.org/records/10519652/files/pneumoniamnist.npz'

def pneumoniamnist_path()->Path:
    "Where the real-data tests read PneumoniaMNIST: $MEDIMB_PNEUMONIAMNIST, else ../shared/data/pneumoniamnist.npz beside the project."
    return Path(os.environ.get('MEDIMB_PNEUMONIAMNIST') or SHARED / 'pneumoniamnist.npz').expanduser()

@pytest.fixture(autouse=True)
def _isolated_results(tmp_path, monkeypatch):
    "Every test writes results and caches into its own temporary folders."
    monkeypatch.setenv('MEDIMB_RESULTS', str(tmp_path / 'results'))
    monkeypatch.setenv('MEDIMB_CACHE', str(tmp_path / 'cache'))

@pytest.fixture
def pneumoniamnist():
    "The real PneumoniaMNIST .npz (28 px); a missing file fails the test, naming the variable and the path."
    path = pneumoniamnist_path()
    if not path.is_file():
        how = 'MEDIMB_PNEUMONIAMNIST' + (f"={os.environ['MEDIMB_PNEUMONIAMNIST']}" if os.environ.get('MEDIMB_PNEUMONIAMNIST') else ' is not set, so the default')
        pytest.fail(f"real-data test needs PneumoniaMNIST (MedMNIST .npz layout) at {path} ({how}). Download {PNEUMONIAMNIST_URL} "
                    f"and set MEDIMB_PNEUMONIAMNIST to its path, or put it in ../shared/data/ beside the project")
    return path
