"Layering of medimb's modules: every import runs down the floors (never up, never in a circle), and no block of code is written twice."
import ast, re
from collections import Counter
from pathlib import Path
import pytest

PKG = Path(__file__).resolve().parents[1] / 'medimb'

FLOORS = [   # ground first; a module may import only from floors below its own (or its own floor's modules, without a circle)
    ['core'], ['images'], ['phantom'], ['loaders'], ['splits'], ['augment'], ['data'], ['metrics'], ['models'], ['train'],
    ['trainers'], ['balancer'], ['cam'], ['generative'], ['pipelines'], ['experiment'],
    ['masking', 'interpolation', 'pairing', 'resampling', 'ddpm', 'gans', 'diffusemix', 'losses', 'sd15'],
    ['report'], ['study'], ['benchmark'], ['docs'], ['cli'],
]
FLOOR = {m: i for i, floor in enumerate(FLOORS) for m in floor}
NOT_LAYERED = {'__init__', '_modidx'}   # the package marker and nbdev's index

def modules()->list[str]:
    return sorted(p.stem for p in PKG.glob('*.py') if p.stem not in NOT_LAYERED)

def imports(name:str)->set[str]:
    "The medimb modules `name` imports, at the top or inside functions: `from .x`, `from medimb.x`, `import medimb.x`, `from . import x`."
    out = set()
    for node in ast.walk(ast.parse((PKG / f'{name}.py').read_text())):
        if isinstance(node, ast.ImportFrom):
            base = node.module or ''
            if node.level == 1 or base == 'medimb' or base.startswith('medimb.'):
                base = base.removeprefix('medimb').lstrip('.')
                if base: out.add(base.split('.')[0])
                else: out |= {a.name.split('.')[0] for a in node.names}     # from . import x / from medimb import x
        elif isinstance(node, ast.Import):
            out |= {a.name.split('.')[1] for a in node.names if a.name.startswith('medimb.')}
    return (out & set(modules()) | {m for m in out if m not in NOT_LAYERED}) - {name, '__version__'}

def test_every_module_has_a_floor():
    missing = [m for m in modules() if m not in FLOOR]
    assert not missing, f"medimb modules {missing} are on no floor: add each to FLOORS in tests/test_layers.py, above what it imports"

def test_no_import_runs_upward():
    up = [f"{m} (floor {FLOOR[m]}) imports {i} (floor {FLOOR[i]})" for m in modules() if m in FLOOR
          for i in sorted(imports(m)) if i in FLOOR and FLOOR[i] > FLOOR[m]]
    assert not up, 'imports that run upward:\n' + '\n'.join(up)

def test_no_import_circle():
    graph = {m: imports(m) & set(modules()) for m in modules()}
    state, circles = {}, []
    def visit(m, path):
        state[m] = 'open'
        for i in sorted(graph[m]):
            if state.get(i) == 'open': circles.append(' -> '.join(path[path.index(i):] + [i]))
            elif i not in state: visit(i, path + [i])
        state[m] = 'done'
    for m in modules():
        if m not in state: visit(m, [m])
    assert not circles, 'import circles:\n' + '\n'.join(circles)

def test_the_layer_check_sees_imports_inside_functions(tmp_path):
    (tmp_path / 'core.py').write_text("def f():\n    from medimb.cli import main\n    import medimb.metrics as m\n")
    (tmp_path / 'cli.py').write_text("from .core import f\nfrom . import metrics\n")
    (tmp_path / 'metrics.py').write_text('')
    global PKG
    old, PKG = PKG, tmp_path
    try:
        assert imports('core') == {'cli', 'metrics'} and imports('cli') == {'core', 'metrics'}
        with pytest.raises(AssertionError, match='core \\(floor 0\\) imports cli'): test_no_import_runs_upward()
        with pytest.raises(AssertionError, match='(cli -> core -> cli|core -> cli -> core)'): test_no_import_circle()
    finally: PKG = old

# Repeated code: a block of MIN_LINES consecutive lines that appears twice in medimb/*.py (in one file or two).
MIN_LINES = 6
# Ignored, because they say nothing on their own and line up by chance: blank lines; lines that are only brackets,
# commas or colons (a signature's closing `):`); comments; import lines; `#| export`-style directives.
_TRIVIAL = re.compile(r'^[\s()\[\]{}:,]*$')

def _code_lines(path:Path)->list[tuple[int, str]]:
    out = []
    for i, line in enumerate(path.read_text().splitlines(), 1):
        text = ' '.join(line.split())
        if not text or _TRIVIAL.match(text) or text.startswith(('#', 'import ', 'from ')): continue
        out.append((i, text))
    return out

def repeated_blocks(paths:list[Path], n:int=MIN_LINES)->list[str]:
    "Where a run of `n` code lines (whitespace normalized, trivial lines skipped) occurs more than once."
    seen, hits = {}, []
    for p in paths:
        lines = _code_lines(p)
        for k in range(len(lines) - n + 1):
            block = tuple(t for _, t in lines[k:k + n])
            where = f"{p.name}:{lines[k][0]}"
            if block in seen and seen[block] != where: hits.append(f"{where} repeats {seen[block]}: {block[0][:80]}")
            else: seen.setdefault(block, where)
    return hits

def test_no_block_of_code_is_written_twice():
    hits = repeated_blocks(sorted(p for p in PKG.glob('*.py') if p.stem != '_modidx'))
    assert not hits, f"{len(hits)} blocks of {MIN_LINES}+ lines written twice in medimb/ (make one function):\n" + '\n'.join(hits[:40])

def test_the_repeat_check_finds_a_copied_block(tmp_path):
    body = ''.join(f"    x{i} = f({i})\n" for i in range(6))
    (tmp_path / 'a.py').write_text(f"def a():\n{body}    return 1\n")
    (tmp_path / 'b.py').write_text(f"def b():\n{body.replace('    ', '        ')}    return 2\n")   # indented otherwise: still the same lines
    assert len(repeated_blocks([tmp_path / 'a.py', tmp_path / 'b.py'])) == 1
    assert not repeated_blocks([tmp_path / 'a.py'])


def test_training_does_not_import_plotting():
    "The loop, the experiment entry point and the metrics import no matplotlib: plotting is imported when a figure is drawn."
    import subprocess, sys
    code = "import sys, medimb.train, medimb.experiment, medimb.metrics; print(sorted(m for m in sys.modules if m.split('.')[0] == 'matplotlib'))"
    out = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == '[]', f"importing training pulls in {out}"


def private_imports(name:str)->list[str]:
    "The private names (leading underscore) module `name` takes from another medimb module."
    out = []
    for node in ast.walk(ast.parse((PKG / f'{name}.py').read_text())):
        if isinstance(node, ast.ImportFrom) and (node.level == 1 or (node.module or '').startswith('medimb')):
            out += [f"{name} takes {a.name} from {node.module}" for a in node.names if a.name.startswith('_') and not a.name.startswith('__')]
    return out

def test_no_private_name_crosses_a_module():
    crossing = [p for m in modules() for p in private_imports(m)]
    assert not crossing, "private names used across modules (make them public, or move the code to where it is used):\n" + '\n'.join(crossing)
