# Compiles bpf/<name>.bpf.c with clang -target bpf against the pinned
# vmlinux.h and generates <build>/bpf/<name>.skel.h with bpftool.
find_program(VIGIL_CLANG NAMES clang clang-14 REQUIRED)
find_program(VIGIL_BPFTOOL NAMES bpftool PATHS /usr/sbin /sbin REQUIRED)

if(CMAKE_SYSTEM_PROCESSOR MATCHES "x86_64|AMD64")
  set(VIGIL_BPF_ARCH x86)
  set(VIGIL_VMLINUX_ARCH x86_64)
elseif(CMAKE_SYSTEM_PROCESSOR MATCHES "aarch64|arm64")
  set(VIGIL_BPF_ARCH arm64)
  set(VIGIL_VMLINUX_ARCH arm64)
else()
  message(FATAL_ERROR "vigil: no BPF target for ${CMAKE_SYSTEM_PROCESSOR}")
endif()

set(VIGIL_BPF_OUT ${CMAKE_BINARY_DIR}/bpf)
file(MAKE_DIRECTORY ${VIGIL_BPF_OUT})

if(VIGIL_VMLINUX_FROM_HOST)
  set(VIGIL_VMLINUX_DIR ${VIGIL_BPF_OUT}/vmlinux)
  file(MAKE_DIRECTORY ${VIGIL_VMLINUX_DIR})
  add_custom_command(
    OUTPUT ${VIGIL_VMLINUX_DIR}/vmlinux.h
    COMMAND ${VIGIL_BPFTOOL} btf dump file /sys/kernel/btf/vmlinux format c > ${VIGIL_VMLINUX_DIR}/vmlinux.h
    COMMENT "vmlinux.h from this host's BTF")
  set(VIGIL_VMLINUX_H ${VIGIL_VMLINUX_DIR}/vmlinux.h)
else()
  set(VIGIL_VMLINUX_DIR ${CMAKE_SOURCE_DIR}/bpf/vmlinux/${VIGIL_VMLINUX_ARCH})
  set(VIGIL_VMLINUX_H ${VIGIL_VMLINUX_DIR}/vmlinux.h)
  if(NOT EXISTS ${VIGIL_VMLINUX_H})
    message(FATAL_ERROR "vigil: no pinned vmlinux.h for ${VIGIL_VMLINUX_ARCH}; configure with -DVIGIL_VMLINUX_FROM_HOST=ON")
  endif()
endif()

function(vigil_bpf_skeleton name)
  set(src ${CMAKE_SOURCE_DIR}/bpf/${name}.bpf.c)
  set(obj ${VIGIL_BPF_OUT}/${name}.bpf.o)
  set(skel ${VIGIL_BPF_OUT}/${name}.skel.h)
  # What the skeleton embeds: the object linked by bpftool, which drops the
  # DWARF (~90% of the object; libbpf needs only .BTF and .BTF.ext, which
  # also keep the verifier's source lines). It sits in vigild's .rodata and
  # is read at every load.
  set(linked ${VIGIL_BPF_OUT}/${name}.linked.o)
  add_custom_command(
    OUTPUT ${obj}
    COMMAND ${VIGIL_CLANG} -g -O2 -target bpf -D__TARGET_ARCH_${VIGIL_BPF_ARCH}
      -Wall -Werror -Wno-unused-function
      -I${VIGIL_VMLINUX_DIR} -I${CMAKE_SOURCE_DIR}/bpf
      # libbpf's usdt.bpf.h includes <linux/errno.h>, whose <asm/errno.h>
      # lives under the multiarch directory only.
      -idirafter /usr/include/${CMAKE_LIBRARY_ARCHITECTURE}
      -c ${src} -o ${obj}
    DEPENDS ${src} ${CMAKE_SOURCE_DIR}/bpf/${name}.h ${CMAKE_SOURCE_DIR}/bpf/common.bpf.h ${CMAKE_SOURCE_DIR}/bpf/unwind.h ${VIGIL_VMLINUX_H}
    IMPLICIT_DEPENDS C ${src}
    COMMENT "clang -target bpf ${name}.bpf.c")
  add_custom_command(
    OUTPUT ${linked}
    COMMAND ${VIGIL_BPFTOOL} gen object ${linked} ${obj}
    DEPENDS ${obj}
    COMMENT "bpftool gen object ${name}")
  add_custom_command(
    OUTPUT ${skel}
    COMMAND ${VIGIL_BPFTOOL} gen skeleton ${linked} name ${name}_bpf > ${skel}
    DEPENDS ${linked}
    COMMENT "bpftool gen skeleton ${name}")
  add_custom_target(vigil_bpf_${name} DEPENDS ${skel})
endfunction()
