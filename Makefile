# SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only
# make demo   - build and run the loopback demo (server + client, verified IO)
# make check  - build plain, ASan+UBSan and TSan, and run the suite in each
# make build  - plain build only
BUILD ?= build
JOBS ?= $(shell nproc)
CTEST_ARGS ?= --output-on-failure -j$(JOBS)

.PHONY: all deps build demo check check-plain check-asan check-tsan install clean

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
	cd $(BUILD)/$(1) && ctest $(CTEST_ARGS)
endef

check-plain: deps $(BUILD)/plain/build.ninja
	$(call suite,plain)

check-asan: deps $(BUILD)/asan/build.ninja
	$(call suite,asan)

check-tsan: deps $(BUILD)/tsan/build.ninja
	$(call suite,tsan)

check: check-plain check-asan check-tsan
	@echo "make check: plain, asan and tsan suites passed"

install: build
	cmake --install $(BUILD)/plain

clean:
	rm -rf $(BUILD)
