#!/usr/bin/env python3
"""Tests scripts/gpu-preflight (the first step of scripts/gpu-check) on this machine, without a
GPU: on bundles and library folders made in a temporary folder, with small shared libraries
built by the C compiler standing in for cuBLAS. It must find a library in a CUDA toolkit folder,
in a Python environment's NVIDIA wheels (both layouts) and in torch/lib; never in stubs/; report
a library nobody has, a binary whose linked library is gone (and skip it), and work without
Python. Given the path of a built bench_cuda_kernels (ctest passes it in CUDA builds), it also
checks that the attention benchmark links neither cuBLAS nor the CUDA runtime, and runs the real
search, which must find the toolkit's cuBLAS where the machine has one.

    gpu_preflight_test.py [BENCH_CUDA_KERNELS]"""
import glob
import os
import shutil
import subprocess
import sys
import tempfile
import unittest

REPO = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
SCRIPT = os.path.join(REPO, "scripts", "gpu-preflight")
BENCH = None  # argv[1], when given
CC = shutil.which("cc") or shutil.which("gcc")


def build_lib(folder, soname, version=None):
    """A shared library named and sonamed `soname` in `folder`, its symbol tagged `version` when
    given; returns its path."""
    os.makedirs(folder, exist_ok=True)
    src = os.path.join(folder, "lib.c")
    with open(src, "w") as f:
        f.write("int troupe_fake_symbol(void) { return 7; }\n")
    path = os.path.join(folder, soname)
    flags = []
    if version:
        script = os.path.join(folder, "lib.map")
        with open(script, "w") as f:
            f.write(version + " { global: troupe_fake_symbol; local: *; };\n")
        flags = [f"-Wl,--version-script={script}"]
    subprocess.run([CC, "-shared", "-fPIC", f"-Wl,-soname,{soname}", *flags, "-o", path, src],
                   check=True)
    for scratch in (src, os.path.join(folder, "lib.map")):
        if os.path.exists(scratch):
            os.remove(scratch)
    return path


def build_exe(path, lib_path):
    """An executable at `path` linked against the shared library at `lib_path`."""
    src = path + ".c"
    with open(src, "w") as f:
        f.write("int troupe_fake_symbol(void);\nint main(void) { return troupe_fake_symbol(); }\n")
    subprocess.run([CC, "-o", path, src, lib_path], check=True)
    os.remove(src)


def parse_env(path):
    values = {}
    with open(path) as f:
        for line in f:
            key, _, value = line.rstrip("\n").partition("=")
            values[key] = value.strip("'")
    return values


@unittest.skipUnless(CC, "needs a C compiler to build stand-in libraries")
class GpuPreflightTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.root = self.tmp.name
        self.bundle = os.path.join(self.root, "bundle")
        os.makedirs(os.path.join(self.bundle, "bin"))
        os.makedirs(os.path.join(self.bundle, "lib"))
        shutil.copy("/bin/true", os.path.join(self.bundle, "bin", "true"))
        self.report = os.path.join(self.root, "report")

    def tearDown(self):
        self.tmp.cleanup()

    def needs(self, *sonames):
        with open(os.path.join(self.bundle, "DLOPEN"), "w") as f:
            f.write(" ".join(sonames) + "\n")

    def run_preflight(self, lib_dirs="", site=None, python=None):
        """Runs the pre-flight with only `lib_dirs` as system folders and `site` on Python's
        path; returns (exit status, report text, preflight.env as a dict)."""
        env = dict(os.environ)
        env.pop("LD_LIBRARY_PATH", None)
        env["TROUPE_CUDA_LIB_DIRS"] = lib_dirs
        if site is not None:
            env["PYTHONPATH"] = site
        if python is not None:
            env["TROUPE_PYTHON"] = python
        result = subprocess.run([SCRIPT, self.bundle, self.report], env=env, capture_output=True,
                                text=True)
        with open(os.path.join(self.report, "preflight.txt")) as f:
            text = f.read()
        self.assertEqual(result.stdout, "".join(
            line + "\n" for line in text.splitlines() if "folders searched" not in line))
        return result.returncode, text, parse_env(os.path.join(self.report, "preflight.env"))

    def test_finds_a_library_in_a_toolkit_folder(self):
        toolkit = os.path.join(self.root, "cuda-13.0", "lib64")
        build_lib(toolkit, "libtroupe_blas.so.13")
        self.needs("libtroupe_blas.so.13")
        status, text, env = self.run_preflight(lib_dirs=toolkit)
        self.assertEqual(status, 0, text)
        self.assertIn(f"libtroupe_blas.so.13: {toolkit}\n", text)
        self.assertIn("libtroupe_blas.so.13 opens", text)
        self.assertEqual(env["TROUPE_LIB_PATH"], toolkit)
        self.assertEqual(env["TROUPE_CUBLAS"], "ok")
        self.assertEqual(env["TROUPE_SKIP_BINARIES"], "")

    def test_finds_libraries_in_python_wheels_and_torch(self):
        site = os.path.join(self.root, "site-packages")
        wheel_12 = os.path.join(site, "nvidia", "cublas", "lib")       # nvidia-cublas-cu12
        wheel_13 = os.path.join(site, "nvidia", "cu13", "lib")         # the CUDA 13 wheels
        torch_lib = os.path.join(site, "torch", "lib")
        build_lib(wheel_12, "libtroupe_blas.so.12")
        build_lib(wheel_13, "libtroupe_blas.so.13")
        build_lib(torch_lib, "libtroupe_blaslt.so.13")
        self.needs("libtroupe_blas.so.13", "libtroupe_blaslt.so.13")
        status, text, env = self.run_preflight(site=site)
        self.assertEqual(status, 0, text)
        self.assertIn(f"libtroupe_blas.so.13: {wheel_13}\n", text)
        self.assertIn(f"libtroupe_blaslt.so.13: {torch_lib}\n", text)
        self.assertEqual(env["TROUPE_LIB_PATH"], f"{wheel_13}:{torch_lib}")
        self.assertEqual(env["TROUPE_CUBLAS"], "ok")

    def test_a_binary_linking_a_wheel_library_loads_through_the_new_path(self):
        wheel = os.path.join(self.root, "site", "nvidia", "cu13", "lib")
        lib = build_lib(wheel, "libtroupe_blas.so.13")
        build_exe(os.path.join(self.bundle, "bin", "uses_blas"), lib)
        self.needs("libtroupe_blas.so.13")
        status, text, env = self.run_preflight(site=os.path.join(self.root, "site"))
        self.assertEqual(status, 0, text)
        self.assertIn("ldd: 2 of 2 binaries find every library they link", text)

    def test_reports_a_library_nobody_has(self):
        elsewhere = os.path.join(self.root, "cuda-12", "lib64")
        build_lib(elsewhere, "libtroupe_blas.so.12")
        self.needs("libtroupe_blas.so.13")
        status, text, env = self.run_preflight(lib_dirs=elsewhere)
        self.assertEqual(status, 1, text)
        self.assertIn("libtroupe_blas.so.13: not in any candidate folder (other versions: "
                      f"{elsewhere}/libtroupe_blas.so.12)", text)
        self.assertIn("libtroupe_blas.so.13 does not open: OSError: libtroupe_blas.so.13: "
                      "cannot open shared object file", text)
        self.assertIn("cuBLAS is missing", text)
        self.assertEqual(env["TROUPE_CUBLAS"], "missing")
        self.assertEqual(env["TROUPE_LIB_PATH"], "")

    def test_never_takes_a_stubs_folder(self):
        stubs = os.path.join(self.root, "cuda", "lib64", "stubs")
        build_lib(stubs, "libtroupe_blas.so.13")
        self.needs("libtroupe_blas.so.13")
        status, text, env = self.run_preflight(lib_dirs=stubs)
        self.assertEqual(status, 1, text)
        self.assertEqual(env["TROUPE_CUBLAS"], "missing")

    def test_skips_a_binary_whose_library_is_gone(self):
        gone = build_lib(os.path.join(self.root, "gone"), "libtroupe_gone.so.1")
        build_exe(os.path.join(self.bundle, "bin", "needs_gone"), gone)
        os.remove(gone)
        toolkit = os.path.join(self.root, "toolkit")
        build_lib(toolkit, "libtroupe_blas.so.13")
        self.needs("libtroupe_blas.so.13")
        status, text, env = self.run_preflight(lib_dirs=toolkit)
        self.assertEqual(status, 1, text)
        self.assertIn("needs_gone: not found: libtroupe_gone.so.1 (skipped)", text)
        self.assertIn("ldd: 1 of 2 binaries find every library they link", text)
        self.assertEqual(env["TROUPE_SKIP_BINARIES"], "needs_gone")
        self.assertEqual(env["TROUPE_PREFLIGHT_PROBLEMS"], "1")
        self.assertEqual(env["TROUPE_CUBLAS"], "ok")

    def test_skips_a_binary_that_needs_a_newer_symbol_version(self):
        # As a binary built against Debian 12's libstdc++ would on an older image.
        folder = os.path.join(self.root, "system")
        lib = build_lib(folder, "libtroupe_ver.so.1", version="TROUPE_2")
        build_exe(os.path.join(self.bundle, "bin", "needs_newer"), lib)
        build_lib(folder, "libtroupe_ver.so.1", version="TROUPE_1")
        shutil.copy(lib, os.path.join(self.bundle, "lib"))
        build_lib(os.path.join(self.root, "toolkit"), "libtroupe_blas.so.13")
        self.needs("libtroupe_blas.so.13")
        status, text, env = self.run_preflight(lib_dirs=os.path.join(self.root, "toolkit"))
        self.assertEqual(status, 1, text)
        self.assertIn("needs_newer: not found: libtroupe_ver.so.1(TROUPE_2) (skipped)", text)
        self.assertEqual(env["TROUPE_SKIP_BINARIES"], "needs_newer")

    def test_without_python_the_folder_search_decides(self):
        toolkit = os.path.join(self.root, "toolkit")
        build_lib(toolkit, "libtroupe_blas.so.13")
        self.needs("libtroupe_blas.so.13", "libtroupe_absent.so.13")
        status, text, env = self.run_preflight(lib_dirs=toolkit, python="")
        self.assertEqual(status, 1, text)
        self.assertIn("libtroupe_blas.so.13 found (no python3 to try opening it)", text)
        self.assertIn("libtroupe_absent.so.13: nowhere (no python3 to try opening it)", text)
        self.assertEqual(env["TROUPE_CUBLAS"], "missing")

    def test_the_real_search_finds_the_toolkits_cublas(self):
        if not glob.glob("/usr/local/cuda*/lib*/libcublas.so.13"):
            self.skipTest("no /usr/local/cuda*/lib*/libcublas.so.13 on this machine")
        env = dict(os.environ)
        env.pop("LD_LIBRARY_PATH", None)
        env.pop("TROUPE_CUDA_LIB_DIRS", None)
        result = subprocess.run([SCRIPT, self.bundle, self.report], env=env, capture_output=True,
                                text=True)
        self.assertIn(result.returncode, (0, 1), result.stderr)
        self.assertRegex(result.stdout, r"libcublas\.so\.13: /usr/local/cuda[^/]*/lib")
        self.assertIn("libcublas.so.13 opens", result.stdout)
        self.assertIn("libcublasLt.so.13 opens", result.stdout)

    def test_the_attention_benchmark_needs_neither_cublas_nor_cudart_to_load(self):
        if not BENCH or not os.path.exists(BENCH):
            self.skipTest(f"no bench_cuda_kernels given, or not built ({BENCH})")
        ldd = subprocess.run(["ldd", BENCH], capture_output=True, text=True, check=True).stdout
        self.assertNotIn("libcublas", ldd)
        self.assertNotIn("libcudart", ldd)
        self.assertNotIn("not found", ldd)


if __name__ == "__main__":
    if len(sys.argv) > 1:
        BENCH = sys.argv.pop(1)
    unittest.main()
