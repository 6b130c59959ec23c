"Tests for the packaging: what settings.ini declares reaches the package's metadata, and the sdist carries LICENSE."
from configparser import ConfigParser
from pathlib import Path
import setuptools  # noqa: F401  (before distutils: setuptools provides it)
from distutils.core import run_setup
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[1]

def _distribution(monkeypatch):
    "The Distribution setup.py builds from settings.ini, without running a command."
    monkeypatch.chdir(ROOT)
    return run_setup('setup.py', stop_after='init')

def test_requirements_with_a_marker_reach_install_requires(monkeypatch):
    "tomli;python_version<\"3.11\" in settings.ini arrives with its marker (3.10 reads grid files with tomli), and nothing is lost."
    cfg = ConfigParser(delimiters=['=']); cfg.read(ROOT / 'settings.ini', encoding='utf-8')
    declared = cfg['DEFAULT']['requirements'].split()
    required = [Requirement(str(r)) for r in _distribution(monkeypatch).install_requires]
    assert len(required) == len(declared)
    tomli = [r for r in required if r.name == 'tomli']
    assert len(tomli) == 1 and tomli[0].marker is not None
    assert tomli[0].marker.evaluate({'python_version': '3.10'}) and not tomli[0].marker.evaluate({'python_version': '3.11'})

def test_license_is_apache2_and_in_the_manifest(monkeypatch):
    "settings.ini says apache2: LICENSE holds the Apache 2.0 text and MANIFEST.in puts it in the sdist."
    text = (ROOT / 'LICENSE').read_text()
    assert 'Apache License' in text and 'Version 2.0, January 2004' in text and 'END OF TERMS AND CONDITIONS' in text
    assert 'include LICENSE' in (ROOT / 'MANIFEST.in').read_text().splitlines()
    assert _distribution(monkeypatch).get_license() == 'Apache Software License 2.0'

def test_the_workflow_tests_every_python_the_package_declares(monkeypatch):
    "The GitHub workflow's matrix is the classifiers' Pythons, from settings.ini's min_python on."
    import re
    declared = [c.rsplit(' :: ', 1)[1] for c in _distribution(monkeypatch).get_classifiers() if re.fullmatch(r'Programming Language :: Python :: 3\.\d+', c)]
    workflow = (ROOT / '.github' / 'workflows' / 'test.yaml').read_text()
    matrix = re.search(r"python-version: \[([^\]]*)\]", workflow)
    assert matrix, "the workflow has no python-version matrix"
    assert [v.strip(" '\"") for v in matrix.group(1).split(',')] == declared
    cfg = ConfigParser(delimiters=['=']); cfg.read(ROOT / 'settings.ini', encoding='utf-8')
    assert declared[0] == cfg['DEFAULT']['min_python']
