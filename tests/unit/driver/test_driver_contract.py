"""One contract between the halves (issue 12 item 7): the driver imports
``fa_agent.contract`` and nothing else of the agent, uses only the names
that module exports, and the contract itself runs without Ironic (it is
the agent's, and the ramdisk has no Ironic)."""

import ast
import glob
import os
import subprocess
import sys

from fa_agent import contract

DRIVER = os.path.join(os.path.dirname(__file__), '..', '..', '..',
                      'ironic_fa_driver')


def driver_modules():
    paths = sorted(glob.glob(os.path.join(DRIVER, '*.py')))
    assert paths
    for path in paths:
        with open(path) as f:
            yield os.path.basename(path), ast.parse(f.read(), path)


def test_the_driver_imports_only_the_contract_of_the_agent():
    wrong = []
    for name, tree in driver_modules():
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                wrong += ['%s: import %s' % (name, a.name) for a in node.names
                          if a.name.split('.')[0] == 'fa_agent']
            elif isinstance(node, ast.ImportFrom) and \
                    (node.module or '').split('.')[0] == 'fa_agent':
                if node.module != 'fa_agent' or \
                        [a.name for a in node.names] != ['contract']:
                    wrong.append('%s: from %s import %s' % (
                        name, node.module,
                        ', '.join(a.name for a in node.names)))
    assert wrong == []


def test_the_driver_uses_only_public_exported_names():
    used = set()
    for name, tree in driver_modules():
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and \
                    isinstance(node.value, ast.Name) and \
                    node.value.id == 'contract':
                used.add(node.attr)
    assert used, 'the driver uses nothing of the contract?'
    assert sorted(n for n in used if n.startswith('_')) == []
    assert sorted(used - set(contract.__all__)) == []


def test_the_contract_needs_no_ironic():
    code = ('import sys; import fa_agent.contract; '
            'print(sorted(m for m in sys.modules '
            'if m.split(".")[0] in ("ironic", "ironic_fa_driver")))')
    out = subprocess.run([sys.executable, '-c', code], check=True,
                         capture_output=True, text=True).stdout
    assert out.strip() == '[]'
