"""MONAI Label app serving the monai_ssl bundles.

    monailabel start_server --app apps/monai_ssl --studies <image folder> --conf models all

The app itself lives in the package (:mod:`monai_ssl.label.app`); see docs/monai_label.md.
"""

from monai_ssl.label.app import MonaiSSLApp

__all__ = ["MonaiSSLApp"]
