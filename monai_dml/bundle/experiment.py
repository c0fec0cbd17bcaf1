# Copyright (c) monai-dml contributors
# Licensed under the Apache License, Version 2.0 (the "License");
# you may not use this file except in compliance with the License.
# You may obtain a copy of the License at
#     http://www.apache.org/licenses/LICENSE-2.0
# Unless required by applicable law or agreed to in writing, software
# distributed under the License is distributed on an "AS IS" BASIS,
# WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
# See the License for the specific language governing permissions and
# limitations under the License.
"""
What a bundle's configs ask of its data set and recipe: data lists per fold, the label-mode switch, transform
chains, the loss, inferers, metrics and evaluation outputs. One object per bundle (``experiment`` in the configs)
checks every choice when it is built, so that a wrong key fails at once with the key's name.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from monai.data import decollate_batch
from monai.handlers import IgniteMetricHandler, MetricsSaver, from_engine
from monai.inferers import Inferer, SimpleInferer, SliceInferer, SlidingWindowInferer
from monai.transforms import (
    Activationsd,
    AsDiscreted,
    Compose,
    ConcatItemsd,
    CopyItemsd,
    Invertd,
    LoadImaged,
    MapLabelValued,
    RandCropByPosNegLabeld,
    Resized,
    SaveImaged,
    ScaleIntensityd,
    SpatialPadd,
)
from monai.utils import StrEnum
from torch.nn.modules.loss import _Loss

from monai_dml.bundle.utils import PackedKDLoss, as_bool, check_fold, check_option
from monai_dml.data import (
    KITS_HU_WINDOW,
    LITS_HU_WINDOW,
    PlanarChannelsd,
    build_slice_index,
    ct_2d_transforms,
    ct_3d_transforms,
    kits_datalist,
    lits_datalist,
    qubiq_2d_transforms,
    qubiq_datalist,
)
from monai_dml.data.utils import nifti_stem
from monai_dml.handlers import OverlaySaver, ReliabilityDiagramSaver
from monai_dml.losses import DiceDomain, DMLCELoss, DMLVariant
from monai_dml.metrics import BinarizedDiceMetric, ECEMetric, SoftDiceMetric, VolumeBiasMetric
from monai_dml.transforms import FusionMethod, LabelSmoothingd, RaterFusiond, estimate_epsilon_from_datalist

__all__ = ["CTExperiment", "Experiment", "LabelMode", "QubiqExperiment", "case_id"]

# file stems shared by every case of a layout; the case is then named by its folder
_GENERIC_STEMS = ("image", "imaging", "segmentation", "aggregated_MAJ_seg")


class LabelMode(StrEnum):
    """
    The training target of a bundle.

    - QUBIQ (several raters): ``majority`` vote, one ``random`` rater per iteration, ``uniform`` mean,
      Dice-``weighted`` mean, ``staple`` probabilities, ``ls`` (majority vote with label smoothing).
    - LiTS/KiTS: ``hard`` one-hot labels, ``ls`` label smoothing, ``kd`` the label plus a teacher's saved
      probabilities (:py:class:`monai_dml.losses.KDLoss`), and in 3D ``raters`` (the uniform mean of the KiTS21/23
      annotations).
    """

    MAJORITY = "majority"
    RANDOM = "random"
    UNIFORM = "uniform"
    WEIGHTED = "weighted"
    STAPLE = "staple"
    LS = "ls"
    HARD = "hard"
    KD = "kd"
    RATERS = "raters"


def case_id(path: str | os.PathLike) -> str:
    """
    A case name from an image path: the file stem (``volume-3``, ``liver_7``), or the folder's name for the layouts
    whose every case has the same file name (``case_00012/imaging.nii.gz`` -> ``case_00012``).
    """
    path = os.fspath(path)
    stem = nifti_stem(os.path.basename(path))
    return os.path.basename(os.path.dirname(path)) if stem in _GENERIC_STEMS else stem


def _case_formatter(metadict: dict, saver: Any) -> dict:
    """``SaveImaged`` output names by :py:func:`case_id`, so that inference writes ``<case>_<postfix>.nii.gz``."""
    return {"subject": case_id(str(metadict.get("filename_or_obj", "case"))), "idx": metadict.get("patch_index")}


class Experiment:
    """
    The parts shared by every bundle; subclasses add the data set (:py:class:`QubiqExperiment`,
    :py:class:`CTExperiment`).

    Keys of the bundle configs map one to one to the arguments. ``prepare()`` (the first ``initialize`` step)
    writes the synthetic data set when ``dataset_dir`` is the bundle's ``synthetic_dir`` and absent, and fails with
    the key's name for any other missing folder.
    """

    layout: str = ""
    label_modes: tuple[str, ...] = ()

    def __init__(
        self,
        dataset_dir: str | os.PathLike,
        synthetic_dir: str | os.PathLike | None = None,
        fold: int = 0,
        num_folds: int = 5,
        label_mode: str = "hard",
        variant: str = "dml1",
        phi: str = "I",
        epsilon: float | str = 1e-5,
        ls_epsilon: float = 0.1,
        ls_method: str = "uniform",
        kd_temperature: float = 1.0,
        sync_batch: bool = False,
        include_background: bool = True,
        synthetic_cases: int = 10,
        synthetic_size: int = 64,
        seed: int = 0,
    ) -> None:
        """
        Args:
            dataset_dir: the data set folder (config key ``dataset_dir``).
            synthetic_dir: the folder a synthetic data set is generated into when ``dataset_dir`` is this folder and
                does not exist yet; None never generates.
            fold: the validation fold, 0 to ``num_folds - 1``. The other folds train.
            num_folds: folds of the deterministic split. Defaults to 5 (the paper's).
            label_mode: see :py:class:`LabelMode`; the subclass lists the modes it supports.
            variant: ``"dml1"`` (the paper's default), ``"dml2"`` or ``"sdl"``.
            phi: the Dice domain of Tilborghs et al.: ``"I"``, ``"BI"``, ``"CI"`` or ``"BCI"``. Defaults to ``"I"``.
            epsilon: the smoothing of numerator and denominator, a number, or ``"auto"`` for the data-driven
                heuristic of Tilborghs et al. (the mean label volume per class over the training fold).
            ls_epsilon: label-smoothing strength for ``label_mode="ls"``. Defaults to 0.1.
            ls_method: ``"uniform"``, ``"boundary"`` or ``"svls"`` (:py:class:`monai_dml.transforms.LabelSmoothing`).
            kd_temperature: distillation temperature for ``label_mode="kd"``. Defaults to 1.
            sync_batch: pool batch domains (``phi`` ``"BI"``/``"BCI"``) over all DDP ranks. Defaults to False.
            include_background: include channel 0 in the loss. Defaults to True.
            synthetic_cases: cases of the generated data set. Defaults to 10.
            synthetic_size: in-plane size of the generated data set. Defaults to 64.
            seed: seed of the generated data set and of the folds. Defaults to 0.

        Raises:
            ValueError: naming the config key of an unknown label mode, variant, Dice domain, label-smoothing
                method, a fold outside the split, or an epsilon that is neither a number >= 0 nor ``"auto"``.
        """
        self.dataset_dir = os.fspath(dataset_dir)
        self.synthetic_dir = None if synthetic_dir is None else os.fspath(synthetic_dir)
        self.num_folds = int(num_folds)
        if self.num_folds < 2:
            raise ValueError(f"config key 'num_folds' must be at least 2, got {num_folds}.")
        self.fold = check_fold(fold, self.num_folds)
        self.label_mode = check_option(label_mode, self.label_modes, "label_mode")
        self.variant = check_option(variant, [v.value for v in DMLVariant], "variant")
        self.phi = check_option(str(phi).lower(), [d.value.lower() for d in DiceDomain], "phi").upper()
        if isinstance(epsilon, str):
            epsilon = check_option(epsilon, ("auto",), "epsilon")
        elif not float(epsilon) >= 0:
            raise ValueError(f"config key 'epsilon' must be a number >= 0 or 'auto', got {epsilon!r}.")
        self.epsilon = epsilon
        self.ls_epsilon = float(ls_epsilon)
        if not 0.0 <= self.ls_epsilon <= 1.0:
            raise ValueError(f"config key 'ls_epsilon' must be in [0, 1], got {ls_epsilon}.")
        self.ls_method = check_option(ls_method, ("uniform", "boundary", "svls"), "ls_method")
        self.kd_temperature = float(kd_temperature)
        self.sync_batch = as_bool(sync_batch, "sync_batch")
        self.include_background = as_bool(include_background, "include_background")
        self.synthetic_cases = int(synthetic_cases)
        self.synthetic_size = int(synthetic_size)
        self.seed = int(seed)
        self._datalist: list[dict[str, Any]] | None = None

    # -- the data set ------------------------------------------------------------------------------------------------
    @property
    def in_channels(self) -> int:
        """Input channels of the network."""
        return 1

    @property
    def out_channels(self) -> int:
        """Output channels of the network (1 for a binary task with sigmoid, else C with softmax)."""
        return 1

    @property
    def binary(self) -> bool:
        """One foreground channel with a sigmoid."""
        return self.out_channels == 1

    def generate(self, out_dir: str) -> None:
        """Write the synthetic data set into ``out_dir``."""
        raise NotImplementedError

    def read_datalist(self) -> list[dict[str, Any]]:
        """Every case of ``dataset_dir`` with its ``"fold"``."""
        raise NotImplementedError

    def prepare(self) -> Experiment:
        """
        Make sure the data set exists (generating the synthetic one on first use) and list it. Under DDP rank 0
        does the work first and the other ranks wait for it.

        Returns:
            self, so that configs can write ``"$@experiment.prepare()"``.

        Raises:
            FileNotFoundError: naming ``dataset_dir`` when it does not exist and is not the synthetic folder.
        """
        dist = torch.distributed.is_available() and torch.distributed.is_initialized()
        rank = torch.distributed.get_rank() if dist else 0
        if rank == 0:
            self._ensure_dataset()
            self.datalist()
        if dist:
            torch.distributed.barrier()
        if rank != 0:
            self.datalist()
        return self

    def _ensure_dataset(self) -> None:
        if os.path.isdir(self.dataset_dir):
            return
        synthetic = self.synthetic_dir is not None and os.path.abspath(self.dataset_dir) == os.path.abspath(
            self.synthetic_dir
        )
        if not synthetic:
            raise FileNotFoundError(
                f"config key 'dataset_dir': {self.dataset_dir} does not exist. Point it at the {self.layout} "
                "data set, or leave it at its default to generate a synthetic one."
            )
        target = os.path.normpath(os.path.abspath(self.dataset_dir))  # no trailing separator: the temp is a sibling
        tmp = f"{target}.partial{os.getpid()}"
        self.generate(tmp)
        os.replace(tmp, target)

    def datalist(self) -> list[dict[str, Any]]:
        """All cases (read once)."""
        if self._datalist is None:
            self._ensure_dataset()
            self._datalist = self.read_datalist()
        return self._datalist

    def train_cases(self) -> list[dict[str, Any]]:
        """The cases outside ``fold``."""
        return [e for e in self.datalist() if e["fold"] != self.fold]

    def val_cases(self) -> list[dict[str, Any]]:
        """The cases of ``fold``."""
        cases = [e for e in self.datalist() if e["fold"] == self.fold]
        if not cases:
            raise ValueError(f"config key 'fold': fold {self.fold} of {self.dataset_dir} holds no case.")
        return cases

    def train_data(self) -> list[dict[str, Any]]:
        """The training entries (cases, or slices for 2D CT)."""
        return self.train_cases()

    def val_data(self) -> list[dict[str, Any]]:
        """The validation entries (whole cases)."""
        return self.val_cases()

    # -- transforms --------------------------------------------------------------------------------------------------
    def train_transforms(self, crop: bool = True) -> Compose:
        """
        The training chain: load, preprocess, and write the target ``label`` of ``label_mode``; ``crop=False`` leaves
        out random patch cropping (whole volumes, e.g. for the epsilon statistic).
        """
        raise NotImplementedError

    def val_transforms(self) -> Compose:
        """The validation chain: ``image`` and the hard reference ``label`` (``(C, ...)`` probabilities)."""
        raise NotImplementedError

    def infer_transforms(self) -> Compose:
        """The inference chain for ``image`` alone."""
        raise NotImplementedError

    def val_postprocessing(self) -> Compose:
        """``pred`` to probabilities and ``pred_hard`` to its one-hot arg-max (or ``> 0.5`` for one channel)."""
        hard = (
            AsDiscreted("pred_hard", threshold=0.5)
            if self.binary
            else AsDiscreted("pred_hard", argmax=True, to_onehot=self.out_channels)
        )
        return Compose(
            [
                Activationsd("pred", sigmoid=self.binary, softmax=not self.binary),
                CopyItemsd("pred", names="pred_hard"),
                hard,
            ]
        )

    def infer_postprocessing(self, output_dir: str, preprocessing: Compose) -> Compose:
        """
        Probabilities back in the source geometry (``Invertd``), written as ``<case>_prob.nii.gz``, and the arg-max
        mask as ``<case>_seg.nii.gz`` (uint8).
        """
        mask = AsDiscreted("mask", threshold=0.5) if self.binary else AsDiscreted("mask", argmax=True)
        save: dict[str, Any] = {
            "output_dir": output_dir,
            "separate_folder": False,
            "output_name_formatter": _case_formatter,
        }
        return Compose(
            [
                Activationsd("pred", sigmoid=self.binary, softmax=not self.binary),
                Invertd("pred", transform=preprocessing, orig_keys="image", nearest_interp=False, to_tensor=True),
                CopyItemsd("pred", names="mask"),
                mask,
                SaveImaged("pred", output_postfix="prob", **save),
                SaveImaged("mask", output_postfix="seg", output_dtype="uint8", **save),
            ]
        )

    def _ct_targets(self) -> list[Any]:
        """Label-mode transforms on an integer ``label`` map (and ``raters``/``teacher``) of a CT chain."""
        c = self.out_channels
        if self.label_mode == LabelMode.HARD:
            return [AsDiscreted("label", to_onehot=c)]
        if self.label_mode == LabelMode.LS:
            return [LabelSmoothingd("label", method=self.ls_method, epsilon=self.ls_epsilon, num_classes=c)]
        if self.label_mode == LabelMode.KD:
            return [AsDiscreted("label", to_onehot=c), ConcatItemsd(["label", "teacher"], "label")]
        return [RaterFusiond("raters", output_key="label", method="uniform", num_classes=c)]

    # -- loss, inferers, metrics -------------------------------------------------------------------------------------
    def epsilon_value(self) -> float | torch.Tensor:
        """``epsilon``, or per class the mean label volume of the training fold for ``"auto"``."""
        if self.epsilon != "auto":
            return float(self.epsilon)
        targets = Compose(
            [*self.train_transforms(crop=False).transforms, _FirstHalf(self.out_channels, self.label_mode)]
        )
        return estimate_epsilon_from_datalist(
            self.train_data(),
            transform=targets,
            key="label",
            include_background=self.include_background,
            progress=False,
        )

    def loss(self) -> _Loss:
        """The paper's ``0.25 CE + 0.75 DML`` (:py:class:`monai_dml.losses.DMLCELoss`), or its KD form."""
        eps = self.epsilon_value()
        kwargs: dict[str, Any] = {
            "sigmoid": self.binary,
            "softmax": not self.binary,
            "variant": self.variant,
            "phi": self.phi,
            "smooth_nr": eps,
            "smooth_dr": eps,
            "sync_batch": self.sync_batch,
            "include_background": self.include_background,
        }
        if self.label_mode == LabelMode.KD:
            return PackedKDLoss(temperature=self.kd_temperature, **kwargs)
        return DMLCELoss(**kwargs)

    def train_inferer(self) -> Inferer:
        """The inferer of training iterations."""
        return SimpleInferer()

    def val_inferer(self) -> Inferer:
        """The inferer of validation, evaluation and inference."""
        return SimpleInferer()

    def key_metric(self) -> dict[str, IgniteMetricHandler]:
        """``{"val_dice": ...}``: hard Dice of the prediction against the hard reference, per case."""
        dice = SoftDiceMetric(include_background=self.binary)
        return {"val_dice": IgniteMetricHandler(dice, output_transform=from_engine(["pred_hard", "label"]))}

    def additional_metrics(self) -> dict[str, IgniteMetricHandler]:
        """ECE (top-label) and the relative volume bias against the reference."""
        both = from_engine(["pred", "label"])
        return {
            "val_ece": IgniteMetricHandler(ECEMetric(), output_transform=both),
            "val_volume_bias": IgniteMetricHandler(
                VolumeBiasMetric(include_background=self.binary), output_transform=both
            ),
        }

    def evaluation_handlers(self, output_dir: str, num_overlays: int = 4) -> list[Any]:
        """
        What ``evaluate.json`` writes into ``output_dir``: ``metrics.csv`` (the aggregates), one
        ``<metric>_raw.csv`` per metric (per case and class), ``reliability_diagram.png`` and overlay PNGs.
        """
        return [
            MetricsSaver(
                save_dir=output_dir,
                metrics="*",
                metric_details="*",
                batch_transform=_image_meta,
                summary_ops="*",
            ),
            ReliabilityDiagramSaver(save_dir=output_dir),
            OverlaySaver(save_dir=output_dir, num_cases=num_overlays, case_key="case"),
        ]


def _image_meta(batch: Any) -> list[dict[str, Any]]:
    items = batch if isinstance(batch, list) else decollate_batch(batch)
    return [dict(getattr(item["image"], "meta", {})) for item in items]


class _FirstHalf:
    """Keep the label's first C channels (the KD target stacks the teacher behind it)."""

    def __init__(self, channels: int, mode: str) -> None:
        self.channels = channels
        self.mode = mode

    def __call__(self, data: Mapping[str, Any]) -> dict[str, Any]:
        d = dict(data)
        if self.mode == LabelMode.KD:
            d["label"] = d["label"][: self.channels]
        return d


class QubiqExperiment(Experiment):
    """
    QUBIQ 2020 in 2D (Wang et al. 2023, Sect. 3.1 and Table 2): one sub-data set and task at a time, images resized
    to ``image_size``, a binary network output; trained on the fused raters of ``label_mode`` and evaluated against
    the majority vote (Dice, ECE, volume bias) and the rater mean (BDice).
    """

    layout = "QUBIQ"
    label_modes: tuple[str, ...] = (*(m.value for m in FusionMethod), "ls")  # every fusion, and LS

    def __init__(
        self,
        dataset_dir: str | os.PathLike,
        qubiq_dataset: str = "kidney",
        qubiq_task: int = 1,
        image_size: int = 256,
        label_mode: str = "uniform",
        **kwargs: Any,
    ) -> None:
        """
        Args:
            dataset_dir: the QUBIQ ``training_data_v2`` folder (holding ``prostate``, ``kidney``, ...).
            qubiq_dataset: the sub-data set: ``"prostate"``, ``"brain-growth"``, ``"brain-tumor"`` or ``"kidney"``.
            qubiq_task: its task number (prostate 1-2, brain-tumor 1-3, else 1).
            image_size: the side images are resized to. Defaults to 256 (the paper's).
            label_mode: the training target; defaults to ``"uniform"`` (the rater mean).
            kwargs: the arguments of :py:class:`Experiment`.

        Raises:
            ValueError: naming ``qubiq_dataset``, ``qubiq_task`` or ``image_size`` when invalid, and the errors of
                :py:class:`Experiment`.
        """
        super().__init__(dataset_dir, label_mode=label_mode, **kwargs)
        tasks = {"prostate": 2, "brain-growth": 1, "brain-tumor": 3, "kidney": 1}
        self.qubiq_dataset = check_option(qubiq_dataset, tuple(tasks), "qubiq_dataset")
        if not 1 <= int(qubiq_task) <= tasks[self.qubiq_dataset]:
            raise ValueError(
                f"config key 'qubiq_task': {self.qubiq_dataset} has tasks 1-{tasks[self.qubiq_dataset]}, "
                f"got {qubiq_task}."
            )
        self.qubiq_task = int(qubiq_task)
        self.image_size = _positive(image_size, "image_size")

    @property
    def in_channels(self) -> int:
        """Four MR modalities for brain-tumor, else one channel."""
        return 4 if self.qubiq_dataset == "brain-tumor" else 1

    def generate(self, out_dir: str) -> None:
        """The synthetic QUBIQ layout with ``qubiq_dataset`` only."""
        from monai_dml.data.synthetic import generate_qubiq

        generate_qubiq(
            out_dir, self.synthetic_cases, self.synthetic_size, seed=self.seed, datasets=[self.qubiq_dataset]
        )

    def read_datalist(self) -> list[dict[str, Any]]:
        """:py:func:`monai_dml.data.qubiq_datalist` of the sub-data set and task."""
        return qubiq_datalist(
            self.dataset_dir, datasets=[self.qubiq_dataset], tasks=[self.qubiq_task], num_folds=self.num_folds
        )

    def _fusion(self) -> list[Any]:
        if self.label_mode == LabelMode.LS:
            return [
                RaterFusiond("raters", output_key="label", method="majority"),
                LabelSmoothingd("label", method=self.ls_method, epsilon=self.ls_epsilon),
            ]
        return [RaterFusiond("raters", output_key="label", method=self.label_mode)]

    def train_transforms(self, crop: bool = True) -> Compose:
        """:py:func:`monai_dml.data.qubiq_2d_transforms` and the fusion of ``label_mode`` (no cropping)."""
        return Compose([*qubiq_2d_transforms(self.image_size).transforms, *self._fusion()])

    def val_transforms(self) -> Compose:
        """The majority vote as ``label`` and the rater mean as ``label_soft``."""
        return Compose(
            [
                *qubiq_2d_transforms(self.image_size).transforms,
                RaterFusiond("raters", output_key="label", method="majority"),
                RaterFusiond("raters", output_key="label_soft", method="uniform"),
            ]
        )

    def infer_transforms(self) -> Compose:
        """Load, channel-first, scale to [0, 1] and resize the image."""
        return Compose(
            [
                LoadImaged("image", reader="NibabelReader", image_only=True),
                PlanarChannelsd("image"),
                ScaleIntensityd("image", minv=0.0, maxv=1.0, channel_wise=True),
                Resized("image", (self.image_size, self.image_size), mode="bilinear"),
            ]
        )

    def val_postprocessing(self) -> Compose:
        """Also the rater mean, copied into the engine output as ``label_mean`` (batch keys are not in it)."""
        return Compose([*super().val_postprocessing().transforms, CopyItemsd("label_soft", names="label_mean")])

    def additional_metrics(self) -> dict[str, IgniteMetricHandler]:
        """Also BDice, the QUBIQ score, against the rater mean."""
        metrics = super().additional_metrics()
        metrics["val_bdice"] = IgniteMetricHandler(
            BinarizedDiceMetric(), output_transform=from_engine(["pred", "label_mean"])
        )
        return metrics


class CTExperiment(Experiment):
    """
    LiTS and KiTS (Wang et al. 2023, Sect. 3.1 and Table 4) in 2D or 3D: background, organ and tumour with a softmax.

    2D trains on the tumour slices of the training volumes (resized to ``image_size``) and validates whole volumes
    slice by slice (``SliceInferer``); 3D trains on ``patch_size`` patches and validates with a sliding window.
    """

    label_modes: tuple[str, ...] = ("hard", "ls", "kd")

    def __init__(
        self,
        dataset_dir: str | os.PathLike,
        layout: str = "lits",
        spatial_dims: int = 2,
        num_classes: int = 3,
        hu_window: Sequence[float] | None = None,
        image_size: int = 512,
        pixdim: Sequence[float] | None = None,
        patch_size: Sequence[int] = (96, 96, 96),
        num_samples: int = 2,
        slice_labels: Sequence[int] = (2,),
        label_values: Mapping[Any, int] | None = None,
        teacher_dir: str | os.PathLike | None = None,
        synthetic_depth: int = 48,
        sw_batch_size: int = 4,
        label_mode: str = "hard",
        **kwargs: Any,
    ) -> None:
        """
        Args:
            dataset_dir: the LiTS (or MSD Task03_Liver) or KiTS folder.
            layout: ``"lits"``, ``"kits19"`` or ``"kits21"`` (KiTS21/23 with per-annotator instance files).
            spatial_dims: 2 (slices) or 3 (patches).
            num_classes: output channels including background. Defaults to 3.
            hu_window: ``(a_min, a_max)`` in HU; None uses the paper's window of the layout.
            image_size: the in-plane size of 2D slices. Defaults to 512 (the paper's).
            pixdim: 3D resampling spacing in mm, or None to keep the files'.
            patch_size: 3D training patch and sliding-window size.
            num_samples: 3D patches per volume and iteration. Defaults to 2.
            slice_labels: label values whose slices train 2D. Defaults to ``(2,)`` (tumour, the paper's).
            label_values: label value remapping applied to the label (and annotations), e.g. ``{3: 1}`` counts
                the KiTS21/23 cysts as kidney for a 3-class model; None keeps the values.
            teacher_dir: folder of the teacher's ``<case>_prob.nii.gz`` (written by ``inference.json``), for
                ``label_mode="kd"``.
            synthetic_depth: slices of the synthetic volumes. Defaults to 48.
            sw_batch_size: slices or windows per network call at validation. Defaults to 4.
            label_mode: ``"hard"``, ``"ls"``, ``"kd"``, or ``"raters"`` (3D with KiTS21/23 annotations).
            kwargs: the arguments of :py:class:`Experiment`.

        Raises:
            ValueError: naming the config key of an invalid layout, dimension, class count, window, size, a kd
                mode without ``teacher_dir``, and the errors of :py:class:`Experiment`.
        """
        self.layout = check_option(layout, ("lits", "kits19", "kits21"), "layout")
        self.spatial_dims = int(spatial_dims)
        if self.spatial_dims not in (2, 3):
            raise ValueError(f"config key 'spatial_dims' must be 2 or 3, got {spatial_dims}.")
        if self.spatial_dims == 3 and self.layout == "kits21":
            self.label_modes = (*CTExperiment.label_modes, "raters")
        super().__init__(dataset_dir, label_mode=label_mode, **kwargs)
        self.num_classes = _positive(num_classes, "num_classes")
        if self.num_classes < 2:
            raise ValueError(
                f"config key 'num_classes' must be at least 2 (background and a class), got {num_classes}."
            )
        window = hu_window if hu_window is not None else (LITS_HU_WINDOW if self.layout == "lits" else KITS_HU_WINDOW)
        if len(window) != 2 or not float(window[0]) < float(window[1]):
            raise ValueError(f"config key 'hu_window' must be (a_min, a_max) with a_min < a_max, got {hu_window}.")
        self.hu_window = (float(window[0]), float(window[1]))
        self.image_size = _positive(image_size, "image_size")
        self.pixdim = None if pixdim is None else [float(p) for p in pixdim]
        self.patch_size = [_positive(p, "patch_size") for p in patch_size]
        if len(self.patch_size) != 3:
            raise ValueError(f"config key 'patch_size' must have 3 values, got {patch_size}.")
        self.num_samples = _positive(num_samples, "num_samples")
        self.slice_labels = [int(v) for v in slice_labels]
        self.label_values = None if label_values is None else {int(k): int(v) for k, v in label_values.items()}
        self.teacher_dir = None if teacher_dir is None else os.fspath(teacher_dir)
        if self.label_mode == LabelMode.KD and not self.teacher_dir:
            raise ValueError(
                "config key 'teacher_dir' must name the folder of the teacher's <case>_prob.nii.gz files for "
                "label_mode 'kd' (write them with the teacher bundle's inference.json)."
            )
        self.synthetic_depth = _positive(synthetic_depth, "synthetic_depth")
        self.sw_batch_size = _positive(sw_batch_size, "sw_batch_size")

    @property
    def out_channels(self) -> int:
        """``num_classes`` (softmax)."""
        return self.num_classes

    def generate(self, out_dir: str) -> None:
        """The synthetic layout."""
        from monai_dml.data.synthetic import generate_dataset

        generate_dataset(
            self.layout, out_dir, self.synthetic_cases, self.synthetic_size, self.synthetic_depth, self.seed
        )

    def read_datalist(self) -> list[dict[str, Any]]:
        """:py:func:`monai_dml.data.lits_datalist` or :py:func:`~monai_dml.data.kits_datalist`, plus teachers."""
        if self.layout == "lits":
            entries = lits_datalist(self.dataset_dir, num_folds=self.num_folds)
        else:
            entries = kits_datalist(
                self.dataset_dir, num_folds=self.num_folds, annotations=self.label_mode == LabelMode.RATERS
            )
            if self.label_mode == LabelMode.RATERS and not all("annotations" in e for e in entries):
                missing = [e["case"] for e in entries if "annotations" not in e]
                raise ValueError(
                    f"config key 'label_mode': 'raters' needs KiTS21/23 annotation files, missing for {missing[:5]}."
                )
        if self.label_mode == LabelMode.KD:
            assert self.teacher_dir is not None
            for entry in entries:
                teacher = os.path.join(self.teacher_dir, f"{case_id(entry['image'])}_prob.nii.gz")
                if not os.path.isfile(teacher):
                    raise FileNotFoundError(
                        f"config key 'teacher_dir': no teacher probabilities for case {entry['case']}: {teacher}."
                    )
                entry["teacher"] = teacher
        return entries

    def train_data(self) -> list[dict[str, Any]]:
        """3D: the training volumes; 2D: their slices with ``slice_labels`` (cached slice index)."""
        volumes = self.train_cases()
        if self.spatial_dims == 3:
            return volumes
        return build_slice_index(volumes, labels=self.slice_labels, progress=False)

    def _remap(self, keys: Sequence[str]) -> list[Any]:
        if self.label_values is None:
            return []
        orig, target = list(self.label_values), list(self.label_values.values())
        return [MapLabelValued(list(keys), orig_labels=orig, target_labels=target)]

    def _volume_chain(self, label: bool) -> list[Any]:
        spatial = (self.image_size, self.image_size, -1) if self.spatial_dims == 2 else None
        return list(
            ct_3d_transforms(
                self.hu_window, pixdim=self.pixdim, spatial_size=spatial, label_key="label" if label else None
            ).transforms
        )

    def train_transforms(self, crop: bool = True) -> Compose:
        """2D: :py:func:`monai_dml.data.ct_2d_transforms`; 3D: the volume chain and random patches; then the target."""
        teacher = "teacher" if self.label_mode == LabelMode.KD else None
        raters = self.label_mode == LabelMode.RATERS
        keys = ["image", "label", *(["teacher"] if teacher else []), *(["raters"] if raters else [])]
        if self.spatial_dims == 2:
            chain = list(ct_2d_transforms(self.hu_window, self.image_size, teacher_key=teacher).transforms)
        else:
            chain = list(
                ct_3d_transforms(
                    self.hu_window,
                    pixdim=self.pixdim,
                    annotation_key="annotations" if raters else None,
                    teacher_key=teacher,
                ).transforms
            )
        chain += self._remap(["label", "raters"] if raters else ["label"])
        if self.spatial_dims == 3 and crop:
            chain += [
                SpatialPadd(keys, self.patch_size),
                RandCropByPosNegLabeld(keys, "label", self.patch_size, pos=1.0, neg=1.0, num_samples=self.num_samples),
            ]
        return Compose([*chain, *self._ct_targets()])

    def val_transforms(self) -> Compose:
        """The whole volume (2D: resized in-plane to ``image_size``) and its one-hot ``label``."""
        return Compose(
            [*self._volume_chain(label=True), *self._remap(["label"]), AsDiscreted("label", to_onehot=self.num_classes)]
        )

    def infer_transforms(self) -> Compose:
        """The volume chain of the image alone."""
        return Compose(self._volume_chain(label=False))

    def val_inferer(self) -> Inferer:
        """2D: slice by slice along the axial axis; 3D: a sliding window of ``patch_size``."""
        if self.spatial_dims == 2:
            return SliceInferer(
                spatial_dim=2, roi_size=(self.image_size, self.image_size), sw_batch_size=self.sw_batch_size
            )
        return SlidingWindowInferer(self.patch_size, sw_batch_size=self.sw_batch_size, overlap=0.25)


def _positive(value: Any, key: str) -> int:
    if isinstance(value, bool) or int(value) != value or int(value) < 1:
        raise ValueError(f"config key {key!r} must be a positive integer, got {value!r}.")
    return int(value)
