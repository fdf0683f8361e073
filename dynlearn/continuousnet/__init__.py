"""ContinuousNet (Queiruga, Erichson, Taylor & Mahoney 2020): a ResNet continuous in depth, whose blocks are
ODEs with parameters expanded in basis functions of depth, integrated by any explicit scheme with any number
of steps chosen after training. Its modules::

    depth_basis.py  piecewise-constant, piecewise-linear and Legendre bases in depth; refinement, projection
    network.py      OdeBlock (through the integration engine's step plan), DepthBatchNorm, ContinuousNet,
                    ResNetBlock, to_channels_last
    training.py     train_classifier (SGD + cosine, bf16, compile, incremental in depth, torchrun),
                    ClassifierTrainingSettings, ClassifierHistory, evaluate_classifier, load_classifier,
                    recalibrate_statistics (batch-norm statistics re-estimated after a projection)
"""

from dynlearn.continuousnet.depth_basis import (DepthBasis, Legendre, PiecewiseConstant, PiecewiseLinear, make_basis,
                                               project)
from dynlearn.continuousnet.network import ContinuousNet, DepthBatchNorm, OdeBlock, ResNetBlock, to_channels_last
from dynlearn.continuousnet.training import (
    ClassifierHistory,
    ClassifierTrainingSettings,
    evaluate_classifier,
    load_classifier,
    recalibrate_statistics,
    train_classifier,
)

__all__ = ["ClassifierHistory", "ClassifierTrainingSettings", "ContinuousNet", "DepthBasis", "DepthBatchNorm",
           "Legendre", "OdeBlock", "PiecewiseConstant", "PiecewiseLinear", "ResNetBlock", "evaluate_classifier",
           "load_classifier", "make_basis", "project", "recalibrate_statistics", "to_channels_last",
           "train_classifier"]
