"""Packaging: the wheel carries templates and static files, Django finds
them from a wheel and from the source checkout, and the orchestration core
imports without Django."""

import os
import subprocess
import sys
import zipfile

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

FIND_ASSETS = '''
import django
from django.conf import settings
settings.configure(
    INSTALLED_APPS=['django.contrib.staticfiles',
                    'snapshot_dashboard.apps.SnapshotDashboardConfig'],
    TEMPLATES=[{'BACKEND': 'django.template.backends.django.DjangoTemplates',
                'APP_DIRS': True}],
    STATIC_URL='/static/')
django.setup()
import snapshot_dashboard
from django.contrib.staticfiles import finders
from django.template import loader
template = loader.get_template('snapshot_dashboard/_consistency_badge.html')
print(template.origin.name)
print(finders.find('snapshot_dashboard/scss/snapshot_dashboard.scss'))
print(snapshot_dashboard.__file__)
'''


def find_assets(pythonpath):
    env = dict(os.environ, PYTHONPATH=pythonpath)
    result = subprocess.run([sys.executable, '-c', FIND_ASSETS], env=env,
                            cwd='/', capture_output=True, text=True,
                            check=True, timeout=120)
    return result.stdout.split()


@pytest.fixture(scope='module')
def wheel(tmp_path_factory):
    out = tmp_path_factory.mktemp('wheel')
    subprocess.run([sys.executable, '-m', 'build', '--wheel',
                    '--no-isolation', '--outdir', str(out), ROOT],
                   check=True, capture_output=True, timeout=600)
    (path,) = out.glob('*.whl')
    return path


@pytest.mark.slow
def test_wheel_contains_templates_and_static_files(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    for folder in ('templates', 'static'):
        for dirpath, _, files in os.walk(os.path.join(ROOT, folder)):
            for name in files:
                relative = os.path.relpath(os.path.join(dirpath, name), ROOT)
                assert 'snapshot_dashboard/' + relative in names


@pytest.mark.slow
def test_django_finds_assets_in_the_installed_wheel(wheel, tmp_path):
    zipfile.ZipFile(wheel).extractall(tmp_path)
    template, static, package = find_assets(str(tmp_path))
    assert package.startswith(str(tmp_path))
    assert template.startswith(str(tmp_path / 'snapshot_dashboard'))
    assert static.startswith(str(tmp_path / 'snapshot_dashboard'))


def test_django_finds_assets_in_the_source_checkout():
    template, static, package = find_assets(ROOT)
    assert package.startswith(os.path.join(ROOT, 'snapshot_dashboard'))
    assert template == os.path.join(
        ROOT, 'templates', 'snapshot_dashboard', '_consistency_badge.html')
    assert static == os.path.join(
        ROOT, 'static', 'snapshot_dashboard', 'scss',
        'snapshot_dashboard.scss')


def test_orchestration_cli_and_agent_import_without_django():
    # A None entry in sys.modules makes any import of it fail.
    code = ('import sys; sys.modules["django"] = None; '
            'import snapshot_dashboard.orchestration as o; '
            'import snapshot_dashboard.cli.plugin; '
            'import snapshot_dashboard.agent.cmd; '
            'print(sorted(m for m in sys.modules if m.startswith("django")))')
    result = subprocess.run([sys.executable, '-c', code], cwd=ROOT,
                            capture_output=True, text=True, timeout=120,
                            check=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "['django']"


def test_ruff_finds_nothing():
    result = subprocess.run([sys.executable, '-m', 'ruff', 'check', ROOT],
                            capture_output=True, text=True, timeout=300,
                            check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_worker_loads_neither_the_horizon_wrappers_nor_horizon_api():
    # The worker and the wrappers share ``credentials`` and ``models``;
    # neither imports the other.
    code = '''
import sys
import django
from django.conf import settings
settings.configure(
    INSTALLED_APPS=['snapshot_dashboard.apps.SnapshotDashboardConfig'],
    DATABASES={'default': {'ENGINE': 'django.db.backends.sqlite3',
                           'NAME': ':memory:'}})
django.setup()
import snapshot_dashboard.worker.service
print(sorted(m for m in sys.modules
             if m.startswith(('snapshot_dashboard.api',
                              'snapshot_dashboard.content',
                              'openstack_dashboard'))))
'''
    result = subprocess.run([sys.executable, '-c', code], cwd=ROOT,
                            capture_output=True, text=True, timeout=120,
                            check=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == '[]'


def test_the_horizon_wrappers_do_not_import_the_worker():
    wrappers = os.path.join(ROOT, 'snapshot_dashboard', 'api')
    for name in os.listdir(wrappers):
        if name.endswith('.py'):
            with open(os.path.join(wrappers, name)) as f:
                assert 'snapshot_dashboard.worker' not in f.read(), name
