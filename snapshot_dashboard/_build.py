"""Build step: copy the top-level templates/ and static/ into the package.

The repository keeps templates and static files at the top level (the
layout Horizon plugins share); Django finds them inside an installed app.
A wheel therefore carries them as ``snapshot_dashboard/templates`` and
``snapshot_dashboard/static``; ``apps.py`` finds either place.
"""

import os
import shutil

from setuptools.command.build_py import build_py

ASSET_FOLDERS = ('templates', 'static')


class BuildPyWithAssets(build_py):
    command_name = 'build_py'

    def run(self):
        super().run()
        if getattr(self, 'editable_mode', False):
            return  # an editable install reads the top-level folders
        for folder in ASSET_FOLDERS:
            target = os.path.join(self.build_lib, 'snapshot_dashboard', folder)
            shutil.rmtree(target, ignore_errors=True)
            shutil.copytree(folder, target)
