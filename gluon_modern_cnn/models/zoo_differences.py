"""How gluoncv's model zoo (0.10) builds some of the papers' variants differently, as data.

Each difference is reproduced by a keyword option of the variant's builder, so that the tests can
compare the package's networks with gluoncv's one to one, while the defaults stay the papers'.
"""
from __future__ import annotations

import fnmatch
from typing import Any, Dict, NamedTuple, Tuple

from ._registry import model_info

__all__ = ["ZooDifference", "GLUONCV_DIFFERENCES", "gluoncv_options"]


class ZooDifference(NamedTuple):
    """One way gluoncv's model zoo (0.10) builds a variant differently from its paper.

    Args:
        models: shell-style pattern of the registered names concerned.
        option: keyword option of the variant's builder that builds gluoncv's network.
        value: the option's value for gluoncv's network.
        description: what differs, with its effect on the parameters.
    """

    models: str        # shell-style pattern of the registered names concerned
    option: str        # keyword option of the variant's builder that builds gluoncv's network
    value: Any
    description: str


#: gluoncv's deviations from the papers, each reproduced by a builder option: with
#: ``get_model(name, **gluoncv_options(name))`` a variant has gluoncv's architecture exactly (its
#: parameters, in creation order, match gluoncv's one to one). VGG and VGG-BN have none.
GLUONCV_DIFFERENCES: Tuple[ZooDifference, ...] = (
    ZooDifference("resnet*_v1*", "bottleneck_bias", True,
                  "The two 1x1 convolutions of each bottleneck block (not the 3x3 one, not the "
                  "projection) have biases: +18,880 parameters in ResNet-50 (25,575,912 instead "
                  "of 25,557,032), +40,640 in ResNet-101, +59,840 in ResNet-152."),
    ZooDifference("resnet*_v2*", "input_batch_norm", True,
                  "A batch normalization without scale and shift (`BatchNorm(scale=False, "
                  "center=False)`) normalizes the input image before the stem: no trainable "
                  "parameters, 4 x channels running statistics and fixed values."),
    ZooDifference("resnet*_v2*", "first_block_preact", True,
                  "The first residual block repeats batch normalization and ReLU after the stem's "
                  "(He et al. 2016b, appendix: the stem's activation serves as the first block's "
                  "pre-activation): +128 trainable parameters and 128 running statistics."),
    ZooDifference("densenet[0-9]*", "final_pool_size", 7,
                  "A fixed 7x7 average pooling replaces the global average pooling: the same "
                  "for 224x224 inputs (7x7 final maps), an error for inputs under 224 pixels and "
                  "a different network (more features into the dense layer) from 256 on."),
)


def gluoncv_options(name: str) -> Dict[str, Any]:
    """The builder options that give the registered variant ``name`` gluoncv's architecture.

    Args:
        name: a registered model name.
    """
    model_info(name)  # unknown names raise a ValueError listing the valid ones
    return {d.option: d.value for d in GLUONCV_DIFFERENCES if fnmatch.fnmatchcase(name, d.models)}
