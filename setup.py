"""mdcsrn-tf: 3D MRI super-resolution with mDCSRN-GAN (Chen et al., MICCAI 2018)."""
from setuptools import find_packages, setup

setup(
    name="mdcsrn-tf",
    version="0.2.0",
    description="mDCSRN / mDCSRN-GAN 3D MRI super-resolution in TensorFlow 2 / Keras 3",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    python_requires=">=3.10",
    packages=find_packages(include=["mdcsrn_tf", "mdcsrn_tf.*"]),
    package_data={"mdcsrn_tf.weights": ["*.weights.h5", "*.json"]},
    # TensorFlow comes from an extra: `[cpu]` (tensorflow-cpu, half the size) or
    # `[gpu]` (tensorflow with CUDA); both pin the same TF/Keras 3 release.
    install_requires=[
        "keras>=3.15,<4",
        "numpy>=1.26",
        "nibabel>=5.2",
        "scipy>=1.11",
        "scikit-image>=0.22",
        "absl-py>=2.1",
        "tqdm>=4.66",
        "tensorboard>=2.21,<3",  # tf.summary: tensorflow-cpu does not pull it in
        "matplotlib>=3.8",
    ],
    extras_require={
        "cpu": ["tensorflow-cpu==2.21.0"],
        "gpu": ["tensorflow[and-cuda]==2.21.0"],
        # mdcsrn-export --format onnx; the runtimes check the file and serve it
        "onnx": ["onnx>=1.16", "onnxruntime>=1.18", "openvino>=2024.0"],
        "dev": ["pytest>=8", "pytest-xdist>=3.5", "nbclient>=0.10", "nbformat>=5.10",
                "ipykernel>=6.29", "onnx>=1.16", "onnxruntime>=1.18", "openvino>=2024.0"],
    },
    entry_points={
        "console_scripts": [
            "mdcsrn-sr=mdcsrn_tf.infer.__main__:run",
            "mdcsrn-bids=mdcsrn_tf.bids.__main__:run",
            "mdcsrn-train=mdcsrn_tf.train.__main__:run",
            "mdcsrn-evaluate=mdcsrn_tf.evaluate.__main__:run",
            "mdcsrn-export=mdcsrn_tf.export.__main__:run",
            "mdcsrn-prepare=mdcsrn_tf.data.__main__:run",
            "mdcsrn-release=mdcsrn_tf.release.__main__:run",
            "mdcsrn-demo=mdcsrn_tf.demo.__main__:run",
            "mdcsrn-models=mdcsrn_tf.models.__main__:run",
        ],
    },
)
