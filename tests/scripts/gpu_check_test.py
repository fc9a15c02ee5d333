#!/usr/bin/env python3
"""Runs scripts/gpu-check end to end on this machine, without a GPU: the bundle's binaries are
stand-ins (shell scripts that write what the real ones would, and one real executable whose
library is gone), and nvidia-smi and compute-sanitizer are stand-ins on PATH. It checks the
order of the steps (attention before the GPU tests, the GEMM ceiling after them), that a missing
cuBLAS costs only the GEMM ceiling and the end-to-end run, that a binary with a missing library
is skipped and reported, that the sanitizer's results reach the summary, and the exit status."""
import json
import os
import shutil
import subprocess
import tempfile
import textwrap
import unittest

REPO = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
SCRIPT = os.path.join(REPO, "scripts", "gpu-check")
CC = shutil.which("cc") or shutil.which("gcc")

BENCH_CUDA_KERNELS = r"""#!/usr/bin/env bash
# Stand-in: writes the JSON of the sections asked for (--only=...), as the real one does.
only=copy,decode,prefill,host,gemm json=
while (( $# )); do
  case $1 in --only=*) only=${1#--only=} ;; --json) json=$2; shift ;; esac
  shift
done
echo "$only" >> "$(dirname "$0")/../calls.log"
if [[ $only == gemm ]]; then
  if [[ -n ${FAKE_GEMM_ERROR:-} ]]; then
    echo '{"device": {"name": "fake"}, "ceilings": {"gemm_error": "UNAVAILABLE: cannot open"}}' > "$json"
    exit 1
  fi
  echo '{"device": {"name": "fake"}, "ceilings": {"gemm_bf16_tflops": 700.0}}' > "$json"
else
  cat > "$json" <<'EOF'
{"device": {"name": "fake"}, "ceilings": {"copy_gbps": 3000.0}, "validated": true,
 "decode": [{"batch": 16, "context": 4096, "gbps": 2500.0, "pct_of_copy": 83.3}],
 "prefill": [{"tokens": 4096, "tflops": 400.0}],
 "host_tier": {"h2d_gbps": 50.0, "restore_gbps": 40.0, "restore_pct_of_h2d": 80.0}}
EOF
fi
"""

CUDA_TEST = r"""#!/usr/bin/env bash
# Stand-in GPU test: one passing case in GoogleTest's XML.
echo "$(basename "$0")" >> "$(dirname "$0")/../calls.log"
xml=${1#--gtest_output=xml:}
echo '<testsuites><testsuite tests="1" failures="0" skipped="0"/></testsuites>' > "$xml"
"""

BENCH_ENGINE = r"""#!/usr/bin/env bash
echo bench_engine >> "$(dirname "$0")/../calls.log"
echo "batch  tok/s"
echo "    1   100"
[[ " $* " == *" --mix-requests "* ]] && echo "length mix: 256 requests at once, 9 output tok/s"
[[ " $* " == *" --sessions "* ]] && echo "multi-turn: 16 sessions x 4 turns, restored 9.0 (48 turns)"
exit 0
"""

NVIDIA_SMI = r"""#!/usr/bin/env bash
echo "name, driver_version"
echo "Fake H100, 999.0"
"""

# A sanitizer that finds a race in the prefill test only (FAKE_RACE set).
COMPUTE_SANITIZER = r"""#!/usr/bin/env bash
tool=$2
if [[ $tool == racecheck && -n ${FAKE_RACE:-} && $* == *prefill* ]]; then
  echo "========= RACECHECK SUMMARY: 1 hazard displayed (1 error, 0 warnings)"
  exit 3
fi
[[ $tool == memcheck ]] && echo "========= ERROR SUMMARY: 0 errors"
[[ $tool == racecheck ]] && echo "========= RACECHECK SUMMARY: 0 hazards displayed (0 errors, 0 warnings)"
exit 0
"""


def write_exe(path, text):
    with open(path, "w") as f:
        f.write(text)
    os.chmod(path, 0o755)


def build_lib(folder, soname):
    os.makedirs(folder, exist_ok=True)
    src = os.path.join(folder, "lib.c")
    with open(src, "w") as f:
        f.write("int troupe_fake_symbol(void) { return 0; }\n")
    path = os.path.join(folder, soname)
    subprocess.run([CC, "-shared", "-fPIC", f"-Wl,-soname,{soname}", "-o", path, src], check=True)
    return path


@unittest.skipUnless(CC, "needs a C compiler to build stand-in libraries")
class GpuCheckTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        root = self.tmp.name
        self.bundle = os.path.join(root, "bundle")
        bin_dir = os.path.join(self.bundle, "bin")
        os.makedirs(bin_dir)
        os.makedirs(os.path.join(self.bundle, "lib"))
        write_exe(os.path.join(bin_dir, "bench_cuda_kernels"), BENCH_CUDA_KERNELS)
        write_exe(os.path.join(bin_dir, "bench_engine"), BENCH_ENGINE)
        for name in ("kernels_decode_attention_cuda_test", "kernels_prefill_attention_cuda_test"):
            write_exe(os.path.join(bin_dir, name), CUDA_TEST)
        self.tools = os.path.join(root, "tools")
        os.makedirs(self.tools)
        write_exe(os.path.join(self.tools, "nvidia-smi"), NVIDIA_SMI)
        write_exe(os.path.join(self.tools, "compute-sanitizer"), COMPUTE_SANITIZER)  # named below
        # The stand-in cuBLAS, in a stand-in toolkit folder.
        self.toolkit = os.path.join(root, "cuda", "lib64")
        build_lib(self.toolkit, "libtroupe_blas.so.13")
        self.out = os.path.join(root, "out")

    def tearDown(self):
        self.tmp.cleanup()

    def run_check(self, needs, **extra_env):
        with open(os.path.join(self.bundle, "DLOPEN"), "w") as f:
            f.write(needs + "\n")
        env = dict(os.environ, PATH=self.tools + os.pathsep + os.environ["PATH"],
                   TROUPE_CUDA_LIB_DIRS=self.toolkit, TROUPE_PYTHON="python3",
                   TROUPE_GPU_CHECK_SECONDS="120",
                   TROUPE_COMPUTE_SANITIZER=os.path.join(self.tools, "compute-sanitizer"))
        env.update(extra_env)
        env.pop("LD_LIBRARY_PATH", None)
        result = subprocess.run([SCRIPT, self.out, self.bundle], env=env, capture_output=True,
                                text=True, timeout=300)
        with open(os.path.join(self.out, "summary.txt")) as f:
            summary = f.read()
        with open(os.path.join(self.out, "progress.log")) as f:
            progress = f.read()
        with open(os.path.join(self.out, "kernels.json")) as f:
            kernels = json.load(f)
        with open(os.path.join(self.bundle, "calls.log")) as f:
            calls = f.read().split()
        return result, summary, progress, kernels, calls

    def test_everything_present_runs_every_step_in_order(self):
        result, summary, progress, kernels, calls = self.run_check("libtroupe_blas.so.13")
        self.assertEqual(result.returncode, 0, result.stdout + result.stderr)
        self.assertEqual(calls, ["copy,decode,prefill,host", "kernels_decode_attention_cuda_test",
                                 "kernels_prefill_attention_cuda_test", "gemm", "bench_engine",
                                 "bench_engine", "bench_engine", "bench_engine"])
        self.assertIn(f"pre-flight: libtroupe_blas.so.13: {self.toolkit}", progress)
        self.assertLess(progress.index("attention benchmarks done"), progress.index("tests: 2"))
        self.assertEqual(kernels["ceilings"], {"copy_gbps": 3000.0, "gemm_bf16_tflops": 700.0})
        self.assertEqual(len(kernels["decode"]), 1)
        self.assertIn("copy bandwidth 3000 GB/s, cuBLAS bf16 GEMM 700 TFLOP/s", summary)
        self.assertIn("GPU tests: 2 binaries passed, 0 failed, 0 not run (pre-flight)", summary)
        self.assertIn("compute-sanitizer memcheck DecodeAttentionCudaTest.AttendsExactlyTheFirstLen"
                      "Keys: clean (ERROR SUMMARY: 0 errors)", summary)
        self.assertIn("compute-sanitizer racecheck PrefillAttentionCudaTest.CausalMaskStopsExactly"
                      "AtTheRowsPosition: clean (RACECHECK SUMMARY: 0 hazards", summary)
        self.assertIn("end-to-end dummy llama-3-8b", summary)
        self.assertIn("length mix: 256 requests at once", summary)
        self.assertEqual(summary.count("multi-turn: 16 sessions x 4 turns"), 2)
        self.assertIn("host KV tier: pinned host-to-device 50.0 GB/s, block restores 40.0 GB/s "
                      "(80% of it)", summary)

    def test_missing_cublas_keeps_the_attention_figures(self):
        result, summary, progress, kernels, calls = self.run_check(
            "libtroupe_absent.so.13", TROUPE_COMPUTE_SANITIZER="/nonexistent/compute-sanitizer")
        self.assertEqual(result.returncode, 1)
        self.assertIn("compute-sanitizer: not found (PATH, /usr/local/cuda*/bin): skipped", summary)
        self.assertNotIn("gemm", calls)
        self.assertNotIn("bench_engine", calls)
        self.assertIn("pre-flight: libtroupe_absent.so.13 does not open", progress)
        self.assertIn("GEMM ceiling skipped: cuBLAS is missing (pre-flight)", progress)
        self.assertIn("end-to-end decode skipped: cuBLAS is missing (pre-flight)", progress)
        self.assertEqual(kernels["ceilings"],
                         {"copy_gbps": 3000.0, "gemm_error": "cuBLAS missing (pre-flight)"})
        self.assertIn("cuBLAS bf16 GEMM none (cuBLAS missing (pre-flight))", summary)
        self.assertIn("   16     4096    2500     83.3", summary)
        self.assertIn("     4096    400.0", summary)

    def test_a_gemm_that_fails_at_run_time_leaves_its_error(self):
        result, summary, progress, kernels, calls = self.run_check(
            "libtroupe_blas.so.13", FAKE_GEMM_ERROR="1")
        self.assertEqual(result.returncode, 1)
        self.assertIn("bench_engine", calls)
        self.assertEqual(kernels["ceilings"]["gemm_error"], "UNAVAILABLE: cannot open")
        self.assertEqual(kernels["ceilings"]["copy_gbps"], 3000.0)

    def test_a_binary_with_a_missing_library_is_skipped_and_a_race_reported(self):
        gone_dir = os.path.join(self.tmp.name, "gone")
        gone = build_lib(gone_dir, "libtroupe_gone.so.1")
        test = os.path.join(self.bundle, "bin", "kernels_gone_cuda_test")
        with open(test + ".c", "w") as f:
            f.write("int troupe_fake_symbol(void);\nint main(void) { return troupe_fake_symbol(); }\n")
        subprocess.run([CC, "-o", test, test + ".c", gone], check=True)
        os.remove(test + ".c")
        shutil.rmtree(gone_dir)
        result, summary, progress, kernels, calls = self.run_check("libtroupe_blas.so.13",
                                                                   FAKE_RACE="1")
        self.assertEqual(result.returncode, 1)
        self.assertNotIn("kernels_gone_cuda_test", calls)
        self.assertIn("pre-flight: kernels_gone_cuda_test: not found: libtroupe_gone.so.1 (skipped)",
                      summary)
        self.assertIn("GPU tests: 2 binaries passed, 0 failed, 1 not run (pre-flight)", summary)
        self.assertIn("compute-sanitizer racecheck PrefillAttentionCudaTest.CausalMaskStopsExactly"
                      "AtTheRowsPosition: ERRORS: RACECHECK SUMMARY: 1 hazard", summary)


if __name__ == "__main__":
    unittest.main()
