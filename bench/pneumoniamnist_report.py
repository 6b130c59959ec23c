"""Write results/pneumoniamnist/README.md, the real-data leaderboard, from the rows of bench/pneumoniamnist.toml.

    MEDIMB_PNEUMONIAMNIST=$PWD/../shared/data/pneumoniamnist.npz python bench/pneumoniamnist_report.py

Reads results/pneumoniamnist/results.csv (written by `medimb benchmark --grid bench/pneumoniamnist.toml --results
results/pneumoniamnist`) and results/pneumoniamnist/run.json (how the run was made: command, machine, wall time).
With one dataset the Friedman test and the Nemenyi critical difference take the seeds as blocks (every method of a
seed shares its split and its training seed), not datasets as in Demšar (2006): they say which differences hold
across seeds of this split, not across data sets.
"""
import json, math, sys
from pathlib import Path
import numpy as np, pandas as pd
from medimb.benchmark import (read_grid, grid_rows, statuses, leaderboard, control_table, friedman_test, nemenyi_cd,
                              plot_critical_difference, cost_table)
from medimb.metrics import mean_ci, to_markdown

ROOT = Path(__file__).resolve().parents[1]
GRID, OUT = ROOT/'bench'/'pneumoniamnist.toml', ROOT/'results'/'pneumoniamnist'
SHOWN = [('roc_auc', 'ROC-AUC'), ('balanced_accuracy_youden', 'BA (val thr.)'), ('balanced_accuracy', 'BA (0.5)'),
         ('f1_youden', 'F1 (val thr.)'), ('f1', 'F1 (0.5)'), ('mcc_youden', 'MCC (val thr.)'), ('mcc', 'MCC (0.5)')]
RANKED = [('roc_auc', 'ROC-AUC'), ('balanced_accuracy_youden', 'balanced accuracy at the validation threshold'),
          ('balanced_accuracy', 'balanced accuracy at 0.5')]
ALPHA = 0.05

def ci(v):
    m, lo, hi = mean_ci(v)
    return 'nan' if m != m else f"{m:.3f}" if hi != hi else f"{m:.3f} ± {hi - m:.3f}"

def seed_ranks(ok, metric):
    "Average rank over seeds (1 best) of every method that ran on every seed, Friedman over seeds, Nemenyi CD."
    table = ok.pivot_table(index='seed', columns='method', values=metric, aggfunc='mean').dropna(axis=1)
    ranks = table.rank(axis=1, ascending=False).mean().sort_values()
    stat, p = friedman_test(table.values)
    return ranks, stat, p, nemenyi_cd(table.shape[1], table.shape[0], ALPHA), table.shape[0]

def main():
    grid = read_grid(GRID)
    rows = grid_rows(grid, OUT)
    if not len(rows): sys.exit(f"no rows of {GRID} in {OUT}: run the grid first")
    ok = rows[statuses(rows) == 'ok'].copy()
    for m, _ in SHOWN: ok[m] = pd.to_numeric(ok[m], errors='coerce')
    run = json.loads((OUT/'run.json').read_text()) if (OUT/'run.json').exists() else {}
    order = ok.groupby('method', sort=False).roc_auc.mean().sort_values(ascending=False).index.tolist()
    # the table: every metric with its 95% CI, and each method's average rank over seeds by the three ranking metrics
    ranked = {m: seed_ranks(ok, m) for m, _ in RANKED}
    table = pd.DataFrame([{'method': m, 'seeds': int((ok.method == m).sum()),
                           **{label: ci(ok.loc[ok.method == m, k]) for k, label in SHOWN},
                           **{f'rank {label.split(" ")[0] if k == "roc_auc" else ("BA val" if k.endswith("youden") else "BA 0.5")}':
                              ranked[k][0].get(m, math.nan) for k, label in RANKED}} for m in order])
    table.insert(0, '#', range(1, len(table) + 1))
    table.to_csv(OUT/'leaderboard.csv', index=False)
    # the copy control: each generative balancer minus ros (the same number of images added, as copies)
    controls = control_table(ok, grid.controls, [k for k, _ in SHOWN[:3]])
    controls.to_csv(OUT/'copy_control.csv', index=False)
    # against the baseline, per ranking metric (paired t-tests over seeds, Holm)
    vs = {}
    for k, label in RANKED:
        lb = leaderboard(ok, k, grid.baseline).set_index('method')
        vs[k] = (lb[(lb.p_baseline_holm < ALPHA) & (lb.vs_baseline > 0)].index.tolist(),
                 lb[(lb.p_baseline_holm < ALPHA) & (lb.vs_baseline < 0)].index.tolist())
    # figures: the headline (three metrics, mean and 95% CI over seeds) and a CD diagram per ranking metric
    import matplotlib; matplotlib.use('Agg'); import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, 3, figsize=(13, 0.24 * len(order) + 1.6), sharey=True)
    for ax, (k, label) in zip(axes, RANKED):
        for y, m in enumerate(order):
            mean, lo, hi = mean_ci(ok.loc[ok.method == m, k])
            ax.errorbar(mean, y, xerr=None if hi != hi else [[mean - lo], [hi - mean]], fmt='o', ms=3, capsize=2,
                        color='C3' if m == grid.baseline else 'C1' if m in grid.controls else 'C0')
        base = ok.loc[ok.method == grid.baseline, k].mean()
        ax.axvline(base, ls='--', color='C3', lw=1); ax.set_title(label, fontsize=10); ax.grid(axis='x', alpha=0.3)
    axes[0].set_yticks(range(len(order))); axes[0].set_yticklabels(order, fontsize=8); axes[0].invert_yaxis()
    fig.suptitle(f"PneumoniaMNIST subset, 28 px, normal at 10% of pneumonia in training: test split, mean and 95% CI over "
                 f"{ok.seed.nunique()} seeds (red: baseline; orange: generative balancers)", fontsize=10)
    fig.tight_layout(); fig.savefig(OUT/'headline.png', dpi=90, bbox_inches='tight'); plt.close(fig)
    for k, label in RANKED:
        ranks, stat, p, cd, n = ranked[k]
        fig = plot_critical_difference(ranks, cd, f"Average rank over {n} seeds by {label} (Nemenyi CD, α = {ALPHA})")
        fig.savefig(OUT/f'cd_{k}.png', dpi=80, bbox_inches='tight'); plt.close(fig)
    cost = cost_table(rows).set_index('method')
    failed = rows[statuses(rows) != 'ok']
    # the report
    md = ["# Real-data leaderboard: PneumoniaMNIST (class-balanced subset), 28 px", "",
          "Every registered method that runs on a CPU (all but Stable Diffusion and DiffuseMix, which need pretrained weights), "
          f"{len(order)} methods × {ok.seed.nunique()} seeds, one small CNN. Written by `bench/pneumoniamnist_report.py` from the rows "
          "of `bench/pneumoniamnist.toml`; every number below is computed from `results.csv` in this folder.", "",
          "## Data", "",
          "`../shared/data/pneumoniamnist.npz` (md5 `3062d8c693378b506564f35a50301b11`): a **class-balanced subset** of the official "
          "PneumoniaMNIST (MedMNIST v2, Yang et al. 2023, from Kermany et al. 2018; CC BY 4.0): train 1,214/1,214, val 135/135, test "
          "234/234 normal/pneumonia. **Its numbers are not comparable with published PneumoniaMNIST results.** Normal (label 0) is made "
          "the rare class of the training split at 10% of the pneumonia count (121 normal, 1,214 pneumonia, by seed); the file's "
          "validation and test splits are used as they are. F1 is pneumonia's (the positive class, as in the pneumonia study). "
          "The official file is one edit away: the commented `datasets` line of the grid.", "",
          "## Protocol", "",
          f"`{grid.model}`, {grid.epochs} epochs, batch {grid.batch_size}, learning rate {grid.lr:g}, seeds {grid.seeds}; each seed draws "
          "its own imbalanced training split and its own initialisation, shared by every method of that seed. Settings were chosen on "
          "the validation split only (a short sweep of the baseline's epochs and learning rate and of two generative balancers, 2 seeds, "
          "recorded in the grid's comments); every other method runs at its defaults. The test split is read once per cell. Metrics at "
          "0.5 and at the threshold that maximises Youden's J on the validation split (\"val thr.\"); 95% CIs are Student-t over seeds. "
          "The generative balancers (DDPM, six GANs) run at a CPU budget (50 GAN steps, 150 DDPM steps): they show what such a budget "
          "buys, not the methods at their studies' size. Pairs of remedies (a balancer with a loss or a post-hoc adjustment) are not "
          "run: methods do not compose yet (a separate issue).", "",
          "## How it was run", "",
          "```sh", run.get('command', 'MEDIMB_PNEUMONIAMNIST=$PWD/../shared/data/pneumoniamnist.npz medimb benchmark --grid bench/pneumoniamnist.toml --results results/pneumoniamnist --workers 2'),
          "python bench/pneumoniamnist_report.py      # this page", "```", "",
          f"Machine: {run.get('machine', 'not recorded')}. Wall time: {run.get('wall', 'not recorded')}. "
          f"Commit: {run.get('commit', 'not recorded')}. A killed run resumes with the same command (finished cells are kept).", "",
          "## Leaderboard", "",
          f"Methods by mean ROC-AUC; mean ± 95% CI over seeds; ranks are average ranks over the {ok.seed.nunique()} seeds (1 best) by "
          "ROC-AUC, balanced accuracy at the validation threshold and at 0.5.", "",
          to_markdown(table, '.1f'), ""]
    md += ["## Ranks, Friedman and Nemenyi", ""]
    for k, label in RANKED:
        ranks, stat, p, cd, n = ranked[k]
        best = ranks.index[0]; beyond = ranks[ranks - ranks.iloc[0] > cd].index.tolist()
        better, worse = vs[k]
        md += [f"- **{label}**: best average rank {best} ({ranks.iloc[0]:.1f}); Friedman over {n} seeds χ² = {stat:.1f}, p = {p:.2g}; "
               f"Nemenyi CD = {cd:.1f} ranks, so {len(beyond)} of {len(ranks)} methods rank significantly below {best}. Against the baseline "
               f"(paired t-test over seeds, Holm): {', '.join(better) or 'none'} better; {', '.join(worse) or 'none'} worse. "
               f"![CD diagram by {label}](cd_{k}.png)"]
    means = {k: ok.groupby('method').mean(numeric_only=True)[k] for k, _ in RANKED}
    md += ["", f"Across the {len(order)} methods the mean balanced accuracy spans {means['balanced_accuracy'].min():.3f} to "
           f"{means['balanced_accuracy'].max():.3f} at 0.5 but {means['balanced_accuracy_youden'].min():.3f} to "
           f"{means['balanced_accuracy_youden'].max():.3f} at the validation threshold, and ROC-AUC {means['roc_auc'].min():.3f} to "
           f"{means['roc_auc'].max():.3f}"
           + (": most of what separates the methods at 0.5 is where their scores put the threshold, which the validation split "
              "corrects for every method alike." if np.ptp(means['balanced_accuracy']) > 2 * np.ptp(means['balanced_accuracy_youden']) else ".")]
    md += ["", f"With one split and {ok.seed.nunique()} seeds the blocks of the Friedman test are seeds, not datasets; the CD of "
           f"{ranked['roc_auc'][3]:.1f} ranks among {len(ranked['roc_auc'][0])} methods is wide, so most differences are not resolved.", ""]
    md += ["## Copy control", "",
           "Each generative balancer against random over-sampling (`ros`), which adds the same number of normal images as copies of "
           "real ones: mean paired difference over seeds (method − ros) and the paired t-test's p, Holm-corrected over the seven methods.", "",
           to_markdown(controls, '.3f'), ""]
    slow = cost.seconds.sort_values()
    md += ["## Cost", "",
           f"Mean wall seconds per cell on the shared machine: from {slow.index[0]} ({slow.iloc[0]:.0f} s) to {slow.index[-1]} "
           f"({slow.iloc[-1]:.0f} s); the baseline {cost.loc[grid.baseline, 'seconds']:.0f} s. Per-method cost: `leaderboard/cost.md`."
           + (" The `features:*` methods share one encoder per seed and worker process: the first such cell of each pays its "
              "training, the others reuse it." if any(m.startswith('features:') for m in order) else ''), ""]
    if len(failed): md += [f"Cells that did not finish: {len(failed)} (`leaderboard/not_run.md`).", ""]
    per_seed = {m: tuple(np.round(g.sort_values('seed')[[k for k, _ in SHOWN]].values.ravel(), 9)) for m, g in ok.groupby('method', sort=False)}
    same = [(a, b) for i, a in enumerate(order) for b in order[i + 1:] if per_seed[a] == per_seed[b]]
    if same: md += ["Identical on every seed and metric (the same training images, e.g. no Tomek link found to remove): "
                    + '; '.join(f"{a} = {b}" for a, b in same) + ".", ""]
    md += ["## Figures", "", "![headline](headline.png)", "",
           "The benchmark's own tables (per-metric leaderboards with paired tests against the baseline and the best, cost, findings) "
           "are in `leaderboard/`; `REPORT.md` gathers them.", ""]
    (OUT/'README.md').write_text('\n'.join(md))
    print(OUT/'README.md')

if __name__ == '__main__': main()
