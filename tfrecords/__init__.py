"""TFRecord schema, shard layout, manifest and the tf.data builders other projects import."""
