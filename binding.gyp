# Two addons, built by `node-gyp rebuild` on npm install and loaded from build/Release: netlink_native (the netlink
# socket, native/netlink.cc, and the stdout hangup watch, native/hangup.cc) and bpf_native (the BPF source, native/bpf.cc
# with the object from bpf/ embedded), built only where clang and libbpf-dev are (native/bpf-toolchain.mjs).
{
  "variables": {
    "build_bpf": "<!(node native/bpf-toolchain.mjs)"
  },
  "targets": [
    {
      "target_name": "netlink_native",
      "sources": ["native/netlink.cc", "native/hangup.cc"],
      "dependencies": ["<!(node -p \"require('node-addon-api').targets\"):node_addon_api"],
      "defines": ["NAPI_VERSION=8", "NODE_ADDON_API_DISABLE_DEPRECATED"],
      "cflags_cc": ["-std=c++17", "-Wall", "-Wextra", "-fno-exceptions"]
    },
    {
      "target_name": "bpf_native",
      "conditions": [
        ["build_bpf=='yes'", {
          "sources": ["native/bpf.cc"],
          "dependencies": ["<!(node -p \"require('node-addon-api').targets\"):node_addon_api"],
          "defines": ["NAPI_VERSION=8", "NODE_ADDON_API_DISABLE_DEPRECATED"],
          "cflags_cc": ["-std=c++17", "-Wall", "-Wextra", "-fno-exceptions"],
          "include_dirs": ["<(INTERMEDIATE_DIR)"],
          "libraries": ["-lbpf"],
          "actions": [
            {
              "action_name": "bpf_object",
              "inputs": ["bpf/dropwatch.bpf.c", "bpf/dropwatch.h", "bpf/vmlinux-min.h", "native/bpf-object.mjs"],
              "outputs": ["<(INTERMEDIATE_DIR)/dropwatch_bpf_object.h"],
              "action": ["node", "native/bpf-object.mjs", "<(INTERMEDIATE_DIR)"]
            }
          ]
        }, {
          "type": "none"
        }]
      ]
    }
  ]
}
