# pg_hyperline: PGXS build of the extension, plus targets that drive CMake for
# the pure C++ parts (unit tests, hyperline-mock, benchmarks, fuzzers).
EXTENSION = pg_hyperline
EXTVERSION = $(shell sed -n "s/^default_version = '\(.*\)'/\1/p" pg_hyperline.control)
MODULE_big = pg_hyperline

SOURCES = $(wildcard src/pg/*.cpp) $(wildcard src/core/*.cpp) \
          $(wildcard src/core/liquid/*.cpp) $(wildcard src/core/delivery/*.cpp) \
          $(wildcard src/http/*.cpp)
OBJS = $(SOURCES:.cpp=.o)
# Our headers, for rebuilding objects when one changes. Not PGXS's HEADERS:
# that variable lists headers to install for other extensions, and ours are
# internal.
CXX_HEADERS = $(wildcard src/*/*.hpp src/*/*/*.hpp)
# Install scripts are written by hand; upgrade scripts of the release under way
# are built from a .sql.in and the install script's replaceable part (the
# functions and views), so that those are written once.
UPGRADES_IN = $(wildcard sql/$(EXTENSION)--*--*.sql.in)
DATA_built = $(UPGRADES_IN:.sql.in=.sql)
DATA = $(filter-out $(DATA_built),$(wildcard sql/$(EXTENSION)--*.sql))

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
# -Werror for our code in CI (CI=true, as CI systems set it), or with WERROR=1.
# Before the PGXS include, which reads PG_CXXFLAGS once.
ifneq ($(filter true 1,$(CI) $(WERROR)),)
PG_CXXFLAGS += -Werror
endif
SHLIB_LINK = -lcurl -lstdc++
# The C++ objects are not JIT-inlined; skip LLVM bitcode to keep builds fast.
override with_llvm = no

PGXS := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)

$(OBJS): $(CXX_HEADERS)

# The upgrade to version V: its .sql.in with @REPLACEABLE@ replaced by the
# BEGIN/END REPLACEABLE part of the install script of V (so it is rebuilt when
# an install script changes).
$(DATA_built): $(DATA)
sql/$(EXTENSION)--%.sql: sql/$(EXTENSION)--%.sql.in
	v=$$(echo $* | sed 's/.*--//'); \
	awk 'FNR == NR { if (/^-- BEGIN REPLACEABLE/) keep = 1; if (keep) part = part $$0 "\n"; \
	                 if (/^-- END REPLACEABLE/) keep = 0; next } \
	     /^@REPLACEABLE@$$/ { printf "%s", part; next } { print }' \
	  sql/$(EXTENSION)--$$v.sql $< > $@.tmp && mv $@.tmp $@

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
