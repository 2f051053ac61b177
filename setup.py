import os
import sys

import setuptools

# pbr resolves the [global] commands of setup.cfg by import: the build command
# that copies templates/ and static/ into the package lives in the source tree.
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

setuptools.setup(setup_requires=['pbr>=2.0.0'], pbr=True)
