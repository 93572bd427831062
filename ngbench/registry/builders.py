"""Builders for models whose torchvision builder changes the graph when no weights are given.

torchvision's ``fasterrcnn_resnet50_fpn(weights=None, weights_backbone=None)`` swaps FrozenBatchNorm2d for
BatchNorm2d and makes every backbone layer trainable, and with the default ``weights_backbone`` it downloads
ResNet-50 weights. The paper's models are the pretrained ones: FrozenBatchNorm2d, 3 trainable layers. These
builders make that graph offline.
"""

from __future__ import annotations


def _resnet50_fpn_frozen_bn():
    from torchvision.models import resnet50
    from torchvision.models.detection.backbone_utils import _resnet_fpn_extractor
    from torchvision.ops import misc as misc_nn_ops

    backbone = resnet50(weights=None, norm_layer=misc_nn_ops.FrozenBatchNorm2d)
    return _resnet_fpn_extractor(backbone, 3)


def fasterrcnn_resnet50_fpn(weights=None, num_classes: int = 91):
    from torchvision.models.detection import FasterRCNN

    return FasterRCNN(_resnet50_fpn_frozen_bn(), num_classes=num_classes)


def maskrcnn_resnet50_fpn(weights=None, num_classes: int = 91):
    from torchvision.models.detection import MaskRCNN

    return MaskRCNN(_resnet50_fpn_frozen_bn(), num_classes=num_classes)
