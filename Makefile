# SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only
# make demo   - build and run the loopback demo (server + client, verified IO)
# make check  - build plain, ASan+UBSan and TSan, and run the suite in each,
#               then the RDMA subset in the lab guest (tests/rdma)
# make check-rdma - every integration test over RDMA verbs in the lab guest
# make build  - plain build only
# make fuzz   - build the libFuzzer harnesses (clang) and run each for
#               FUZZ_RUNS executions (fuzz_srv: FUZZ_SRV_RUNS) over its
#               seed corpus (docs/fuzzing.md)
BUILD ?= build
JOBS ?= $(shell nproc)
CTEST_ARGS ?= --output-on-failure -j$(JOBS)

.PHONY: all deps build demo check check-plain check-asan check-tsan check-lab \
	check-rdma fuzz install clean

all: build

deps:
	@scripts/deps.sh

$(BUILD)/%/build.ninja:
	cmake -S . -B $(BUILD)/$* -G Ninja $(CMAKE_$*)

CMAKE_plain = -DCMAKE_BUILD_TYPE=RelWithDebInfo
CMAKE_asan = -DCMAKE_BUILD_TYPE=Debug -DRTRS_SANITIZE=address
CMAKE_tsan = -DCMAKE_BUILD_TYPE=RelWithDebInfo -DRTRS_SANITIZE=thread

build: deps $(BUILD)/plain/build.ninja
	ninja -C $(BUILD)/plain

demo: build
	scripts/demo.sh $(BUILD)/plain

define suite
	ninja -C $(BUILD)/$(1)
	cd $(BUILD)/$(1) && ctest $(CTEST_ARGS) -LE rdma
endef

check-plain: deps $(BUILD)/plain/build.ninja
	$(call suite,plain)

check-asan: deps $(BUILD)/asan/build.ninja
	$(call suite,asan)

check-tsan: deps $(BUILD)/tsan/build.ninja
	$(call suite,tsan)

# the RDMA lab: a qemu guest with soft-RoCE and soft-iWARP (tests/rdma)
check-lab: deps $(BUILD)/plain/build.ninja
	ninja -C $(BUILD)/plain
	tests/rdma/check.sh $(BUILD)/plain rdma-subset

check-rdma: deps $(BUILD)/plain/build.ninja
	ninja -C $(BUILD)/plain
	tests/rdma/check.sh $(BUILD)/plain rdma

check: check-plain check-asan check-tsan check-lab
	@echo "make check: plain, asan and tsan suites and the RDMA subset passed"

# libFuzzer: clang, ASan+UBSan; new inputs go to $(BUILD)/fuzz/corpus, the
# seeds in tests/fuzz/corpus are only read; a crash stops make and leaves
# its input in $(BUILD)/fuzz/crash-<harness>-*
FUZZ_RUNS ?= 200000
# fuzz_srv opens and closes a whole server per input (~1 ms)
FUZZ_SRV_RUNS ?= 20000
FUZZERS = fuzz_conn fuzz_info fuzz_io fuzz_frame fuzz_rnbd fuzz_srv
CMAKE_fuzz = -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_C_COMPILER=clang \
	-DRTRS_FUZZ=ON -DBUILD_TESTING=OFF

fuzz:
	@scripts/deps.sh
	@scripts/deps.sh fuzz
	$(MAKE) $(BUILD)/fuzz/build.ninja
	ninja -C $(BUILD)/fuzz fuzz_all
	@set -e; for h in $(FUZZERS); do \
		mkdir -p $(BUILD)/fuzz/corpus/$$h; \
		runs=$(FUZZ_RUNS); [ $$h != fuzz_srv ] || runs=$(FUZZ_SRV_RUNS); \
		echo "fuzz: $$h, $$runs runs"; \
		$(BUILD)/fuzz/tests/fuzz/$$h -runs=$$runs -seed=1 \
			-timeout=30 -print_final_stats=1 \
			-artifact_prefix=$(BUILD)/fuzz/crash-$$h- \
			$(BUILD)/fuzz/corpus/$$h tests/fuzz/corpus/$$h \
			2>$(BUILD)/fuzz/$$h.log || { tail -40 $(BUILD)/fuzz/$$h.log; exit 1; }; \
		grep -E '^#[0-9]+[[:space:]]+DONE' $(BUILD)/fuzz/$$h.log; \
	done
	@echo "make fuzz: every harness ran its inputs, clean"

install: build
	cmake --install $(BUILD)/plain

clean:
	rm -rf $(BUILD)
