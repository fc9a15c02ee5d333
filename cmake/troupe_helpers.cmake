# troupe_add_test(name SOURCES ... LIBS ... [LABEL unit|kernel|integration] [GPU])
# One executable per test file; gtest_discover_tests registers each case with its label, and
# the executable joins the custom target troupe_tests_<label>.
function(troupe_add_test name)
  cmake_parse_arguments(T "GPU" "LABEL;PREFIX" "SOURCES;LIBS;PROPERTIES" ${ARGN})
  if(T_GPU AND NOT TROUPE_HAVE_CUDA)
    return()
  endif()
  if(NOT T_LABEL)
    set(T_LABEL unit)
  endif()
  if(T_GPU)
    set(T_LABEL gpu)
  endif()
  add_executable(${name} ${T_SOURCES})
  target_link_libraries(${name} PRIVATE ${T_LIBS} GTest::gtest_main)
  target_compile_definitions(${name} PRIVATE
      TROUPE_SOURCE_DIR="${PROJECT_SOURCE_DIR}"
      TROUPE_SHARED_DIR="${PROJECT_SOURCE_DIR}/../shared")
  gtest_discover_tests(${name} TEST_PREFIX "${T_PREFIX}" PROPERTIES LABELS ${T_LABEL} ${T_PROPERTIES}
                       DISCOVERY_TIMEOUT 60)
  # troupe_tests_<label> builds every test of one label (scripts/test.sh --label=unit builds
  # just those in a sanitizer tree).
  if(NOT TARGET troupe_tests_${T_LABEL})
    add_custom_target(troupe_tests_${T_LABEL})
  endif()
  add_dependencies(troupe_tests_${T_LABEL} ${name})
endfunction()

# troupe_add_bench(name SOURCES ... LIBS ...)
function(troupe_add_bench name)
  cmake_parse_arguments(B "" "" "SOURCES;LIBS" ${ARGN})
  add_executable(${name} ${B_SOURCES})
  target_link_libraries(${name} PRIVATE ${B_LIBS})
endfunction()
