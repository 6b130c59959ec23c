"""Draw the committed PneumoniaMNIST fixture from a full PneumoniaMNIST .npz (MedMNIST layout).

    python tests/data/make_pneumoniamnist_small.py ../shared/data/pneumoniamnist.npz tests/data/pneumoniamnist_small.npz

A seeded draw without replacement of a fixed number of images per class in each split, in the source's order;
the .npz is written with fixed zip timestamps, so the same source gives the same bytes (and md5) every time.
"""
import sys, zipfile
import numpy as np

SEED = 19
PER_CLASS = dict(train=120, val=30, test=50)   # images of each class (normal, pneumonia) in each split

def draw(source:str)->dict:
    "The fixture's arrays: PER_CLASS images of each class per split, drawn with SEED, in the source's order."
    rng, z, out = np.random.default_rng(SEED), np.load(source), {}
    for split, n in PER_CLASS.items():
        labels = z[f'{split}_labels'].reshape(-1)
        keep = np.sort(np.concatenate([rng.choice(np.flatnonzero(labels == c), n, replace=False) for c in (0, 1)]))
        out[f'{split}_images'], out[f'{split}_labels'] = z[f'{split}_images'][keep], z[f'{split}_labels'][keep]
    return out

def save(arrays:dict, path:str):
    "np.savez_compressed's layout, with a fixed timestamp per member so the file's bytes are reproducible."
    with zipfile.ZipFile(path, 'w', zipfile.ZIP_DEFLATED) as zf:
        for k, a in arrays.items():
            with zf.open(zipfile.ZipInfo(f'{k}.npy', date_time=(1980, 1, 1, 0, 0, 0)), 'w') as f:
                np.lib.format.write_array(f, np.ascontiguousarray(a), allow_pickle=False)

if __name__ == '__main__':
    if len(sys.argv) != 3: sys.exit(__doc__)
    save(draw(sys.argv[1]), sys.argv[2])
