"""TFDS log lines that only TFDS itself can act on, kept out of users' output."""

from __future__ import annotations

import logging
import os
import sys

_DECODER_FILE = os.path.join("core", "features", "tensor_feature.py")


class _TfdsOwnDtypeWarning(logging.Filter):
    """Drops "`FeatureConnector.dtype` is deprecated" when TFDS's own
    Tensor.decode_example asked for the attribute (TFDS 4.9 does, for every
    tensor stored as bytes: all raw-pixel datasets), up to ten lines a
    process that no user can act on; a user's own use of `.dtype` still
    warns."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.funcName != "log_tf_warning":
            return True
        frame = sys._getframe(1)
        while frame is not None:
            code = frame.f_code
            if code.co_name == "decode_example" and code.co_filename.endswith(_DECODER_FILE):
                return False
            frame = frame.f_back
        return True


def quiet_tfds_internal_warnings() -> None:
    logger = logging.getLogger("absl")
    if not any(isinstance(f, _TfdsOwnDtypeWarning) for f in logger.filters):
        logger.addFilter(_TfdsOwnDtypeWarning())
