# Thin wrapper over CMake: `make run` sets up, builds and trains; `make test` runs every test.
BUILD ?= build
JOBS ?= 2

PREFIX ?= /usr/local

.PHONY: all build run test bench clean setup install

all: build

setup:
	bash scripts/setup.sh

build:
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=Release >/dev/null
	cmake --build $(BUILD) -j$(JOBS)

# The main job: train lenet5 on Fashion-MNIST for 5 epochs, then print the test accuracy; then 100
# integer-only steps on the (emulated) Hexagon DSP, checked byte for byte against the CPU.
run: setup build
	./$(BUILD)/mandheling train --model lenet5 --epochs 5
	bash scripts/dsp_demo.sh $(BUILD)

test: setup
	JOBS=$(JOBS) bash scripts/test.sh

# The library (shared and static), header, command, DSP program, profiles, models, pkg-config file
# and CMake package under PREFIX; relocatable (the command and library find their files relative to
# themselves).
install: build
	cmake --install $(BUILD) --prefix $(PREFIX)

bench: build
	bash scripts/bench.sh

clean:
	rm -rf $(BUILD) build-asan build-fuzz build-arm64
