# BPF build pipeline: bpf_object(NAME SOURCE) compiles bpf/SOURCE with clang -target bpf into
# ${CMAKE_BINARY_DIR}/bpf/NAME.bpf.o, turns it into a libbpf skeleton header
# ${CMAKE_BINARY_DIR}/generated/bpf/NAME.skel.h with bpftool, and defines the INTERFACE target
# bpfnet_NAME_skel. C++ code links that target and includes "bpf/NAME.skel.h"; the BPF object is
# embedded in the header, so nothing has to be installed next to the binaries.

# The BPF toolchain is not part of a normal C++ toolchain, so say exactly how to get it.
find_program(BPF_CLANG NAMES clang clang-14 clang-15 clang-16 DOC "clang with the BPF target")
if(NOT BPF_CLANG)
  message(FATAL_ERROR "clang (BPF target) not found: run scripts/install-deps.sh "
                      "or pass -DBPF_CLANG=/path/to/clang")
endif()
# Debian installs bpftool in /usr/sbin, which is not on a normal user's PATH.
find_program(BPFTOOL NAMES bpftool PATHS /usr/sbin /sbin /usr/local/sbin DOC "bpftool (gen skeleton)")
if(NOT BPFTOOL)
  message(FATAL_ERROR "bpftool not found (Debian puts it in /usr/sbin): run scripts/install-deps.sh "
                      "or pass -DBPFTOOL=/path/to/bpftool")
endif()

# <linux/types.h> includes <asm/types.h>, which Debian keeps only under the multiarch directory
# (/usr/include/x86_64-linux-gnu). clang -target bpf has no multiarch notion, so the directory must
# be passed explicitly. Ask the host compiler first, then fall back to what CMake detected.
if(NOT BPF_MULTIARCH_INCLUDE_DIR)
  set(_bpf_triplet "")
  foreach(_cc ${CMAKE_C_COMPILER} gcc)
    execute_process(COMMAND ${_cc} -print-multiarch
                    OUTPUT_VARIABLE _bpf_triplet OUTPUT_STRIP_TRAILING_WHITESPACE
                    ERROR_QUIET RESULT_VARIABLE _bpf_rc)
    if(_bpf_rc EQUAL 0 AND _bpf_triplet AND EXISTS "/usr/include/${_bpf_triplet}/asm/types.h")
      break()
    endif()
    set(_bpf_triplet "")
  endforeach()
  if(NOT _bpf_triplet AND CMAKE_LIBRARY_ARCHITECTURE
     AND EXISTS "/usr/include/${CMAKE_LIBRARY_ARCHITECTURE}/asm/types.h")
    set(_bpf_triplet ${CMAKE_LIBRARY_ARCHITECTURE})
  endif()
  if(_bpf_triplet)
    set(BPF_MULTIARCH_INCLUDE_DIR "/usr/include/${_bpf_triplet}"
        CACHE PATH "Directory holding asm/types.h for BPF compiles")
  elseif(EXISTS "/usr/include/asm/types.h")
    # Non-multiarch distributions keep asm/ directly under /usr/include.
    set(BPF_MULTIARCH_INCLUDE_DIR "/usr/include" CACHE PATH "Directory holding asm/types.h")
  else()
    message(FATAL_ERROR "asm/types.h not found (kernel UAPI headers): run scripts/install-deps.sh "
                        "or pass -DBPF_MULTIARCH_INCLUDE_DIR=/usr/include/<triplet>")
  endif()
endif()

# -g makes clang emit BTF, which the skeleton, CO-RE and bpftool's map dumps need.
set(BPF_CFLAGS -O2 -g -Wall -Werror)

# SOURCE is relative to bpf/, or absolute (test harnesses under tests/ that include bpf/lib the same
# way).
function(bpf_object NAME SOURCE)
  if(IS_ABSOLUTE ${SOURCE})
    set(src ${SOURCE})
  else()
    set(src ${PROJECT_SOURCE_DIR}/bpf/${SOURCE})
  endif()
  set(obj_dir ${CMAKE_BINARY_DIR}/bpf)
  set(skel_dir ${CMAKE_BINARY_DIR}/generated/bpf)
  set(obj ${obj_dir}/${NAME}.bpf.o)
  set(dep ${obj_dir}/${NAME}.bpf.d)
  set(skel ${skel_dir}/${NAME}.skel.h)
  file(MAKE_DIRECTORY ${obj_dir} ${skel_dir})

  # clang writes the exact list of headers it read (bpf/lib/*.h, include/bpfnet/abi.h, libbpf's
  # headers) into a depfile, so editing any of them rebuilds the object and nothing else does.
  add_custom_command(
    OUTPUT ${obj}
    COMMAND ${BPF_CLANG} -target bpf ${BPF_CFLAGS}
            -I${PROJECT_SOURCE_DIR}/include -I${PROJECT_SOURCE_DIR}/bpf
            -idirafter ${BPF_MULTIARCH_INCLUDE_DIR}
            -MD -MF ${dep} -c ${src} -o ${obj}
    DEPENDS ${src}
    DEPFILE ${dep}
    COMMENT "BPF ${SOURCE} -> ${NAME}.bpf.o"
    VERBATIM)

  # bpftool prints the skeleton on stdout; write it to a temporary file and rename it so a failed
  # run never leaves a truncated header that looks up to date.
  add_custom_command(
    OUTPUT ${skel}
    COMMAND sh -c "\"$0\" gen skeleton \"$1\" name \"$2\" > \"$3.tmp\" && mv \"$3.tmp\" \"$3\""
            ${BPFTOOL} ${obj} ${NAME} ${skel}
    DEPENDS ${obj}
    COMMENT "bpftool gen skeleton ${NAME}.bpf.o -> ${NAME}.skel.h"
    VERBATIM)

  add_custom_target(bpfnet_${NAME}_skel_gen DEPENDS ${skel})
  add_library(bpfnet_${NAME}_skel INTERFACE)
  # Interface libraries forward their target dependencies to consumers (CMake >= 3.19), so anything
  # linking bpfnet_NAME_skel waits for the header to exist before compiling.
  add_dependencies(bpfnet_${NAME}_skel bpfnet_${NAME}_skel_gen)
  target_include_directories(bpfnet_${NAME}_skel INTERFACE ${CMAKE_BINARY_DIR}/generated
                                                           ${PROJECT_SOURCE_DIR}/include)
  target_link_libraries(bpfnet_${NAME}_skel INTERFACE PkgConfig::LIBBPF)
endfunction()
