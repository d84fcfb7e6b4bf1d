{
  "targets": [
    {
      "target_name": "resnet_native",
      "sources": [
        "native/addon.cc",
        "native/runtime.cc",
        "native/conv.cc",
        "native/conv16.cc",
        "native/batchnorm.cc",
        "native/bnorm_loops.cc",
        "native/bf16.cc",
        "native/elementwise.cc",
        "native/pooling.cc",
        "native/linear.cc",
        "native/loss.cc",
        "native/sgd.cc"
      ],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      "defines": ["NAPI_VERSION=8", "NAPI_CPP_EXCEPTIONS", "NODE_ADDON_API_DISABLE_DEPRECATED"],
      "cflags!": ["-fno-exceptions"],
      "cflags_cc!": ["-fno-exceptions", "-fno-rtti", "-std=gnu++17", "-std=gnu++1y", "-std=gnu++20", "-O2"],
      "cflags": ["-fopenmp"],
      "cflags_cc": ["-std=c++17", "-O3", "-fopenmp", "-fexceptions", "-frtti", "-Wall", "-Wextra", "-Wno-unused-parameter"],
      "ldflags": ["-fopenmp"],
      "libraries": ["-ldnnl"]
    }
  ]
}
