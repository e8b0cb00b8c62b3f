# pg_hyperline: PGXS build of the extension, plus targets that drive CMake for
# the pure C++ parts (unit tests, hyperline-mock, benchmarks, fuzzers).
EXTENSION = pg_hyperline
EXTVERSION = $(shell sed -n "s/^default_version = '\(.*\)'/\1/p" pg_hyperline.control)
MODULE_big = pg_hyperline

SOURCES = $(wildcard src/pg/*.cpp) $(wildcard src/core/*.cpp) \
          $(wildcard src/core/liquid/*.cpp) $(wildcard src/core/delivery/*.cpp) \
          $(wildcard src/http/*.cpp)
OBJS = $(SOURCES:.cpp=.o)
HEADERS = $(wildcard src/*/*.hpp src/*/*/*.hpp)
DATA = $(wildcard sql/$(EXTENSION)--*.sql)

# pg_regress tests: every sql/*.sql except the extension scripts, in name order.
REGRESS = $(sort $(filter-out $(EXTENSION)--%,$(notdir $(basename $(wildcard sql/*.sql)))))
REGRESS_OPTS = --inputdir=. --load-extension=$(EXTENSION)
TAP_TESTS = 1
PROVE_FLAGS = -I ./test/t
# prove looks in t/ by default; ours live in test/t.
PROVE_TESTS = test/t/*.pl

PG_CONFIG ?= pg_config
PG_CPPFLAGS = -I$(CURDIR)/src -DHYPERLINE_VERSION=\"$(EXTVERSION)\"
PG_CXXFLAGS = -std=c++17 -Wall -Wextra -Wno-unused-parameter \
              -Wno-missing-field-initializers -Wno-register
SHLIB_LINK = -lcurl -lstdc++
# The C++ objects are not JIT-inlined; skip LLVM bitcode to keep builds fast.
override with_llvm = no

PGXS := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)

$(OBJS): $(HEADERS)

CMAKE_BUILD ?= build
.PHONY: cmake unit mock bench fuzz demo
cmake:
	cmake -S . -B $(CMAKE_BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	cmake --build $(CMAKE_BUILD) -j$$(nproc)
unit: cmake
	cd $(CMAKE_BUILD) && ctest --output-on-failure
mock: cmake
demo:
	bash scripts/demo.sh
bench:
	bash bench/run.sh
