# SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only
# make demo   - build and run the loopback demo (server + client, verified IO)
# make check  - build plain, ASan+UBSan and TSan, and run the suite in each,
#               then the RDMA subset in the lab guest (tests/rdma)
# make check-rdma - every integration test over RDMA verbs in the lab guest
# make build  - plain build only
BUILD ?= build
JOBS ?= $(shell nproc)
CTEST_ARGS ?= --output-on-failure -j$(JOBS)

.PHONY: all deps build demo check check-plain check-asan check-tsan check-lab \
	check-rdma install clean

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

install: build
	cmake --install $(BUILD)/plain

clean:
	rm -rf $(BUILD)
