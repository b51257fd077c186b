{
  "targets": [
    {
      "target_name": "rxvmm_sys",
      "sources": [
        "native/addon.cc",
        "native/errors.cc",
        "native/fd.cc",
        "native/poller.cc",
        "native/unix_socket.cc",
        "native/mman.cc",
        "native/ioctl.cc",
        "native/kick.cc",
        "native/seals.cc",
        "native/ranges_io.cc"
      ],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      "defines": ["NAPI_VERSION=8", "NAPI_DISABLE_CPP_EXCEPTIONS"],
      "cflags_cc": ["-std=c++17", "-O2", "-Wall", "-Wextra", "-Wno-unused-parameter"]
    }
  ]
}
