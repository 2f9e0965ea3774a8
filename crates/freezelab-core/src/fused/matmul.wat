;; The page's matrix product: C = A · B in f32 with wasm's relaxed-SIMD fused multiply-add,
;; which gemm's kernels do not use. Handwritten, in a module of its own, because one function
;; using relaxed SIMD makes its whole module fail to validate in browsers without it (the page's
;; module must load everywhere; fused/wasm_matmul.rs validates this one and falls back to gemm),
;; and a Rust-built module would bring a stack pointer and data segments of its own. It runs on the worker's memory (imported): it has no data, no globals
;; and no stack, so it writes nothing but C and the packing buffers it is given.
;;
;; Blocking: KC = 256 rows of B are packed into panels of 8 columns, and MC = 64 rows of A
;; (their KC-long stretch) into tiles of 4 rows, both interleaved by k and zero-padded to whole
;; panels, tiles and an even k. The inner loop then reads 8 contiguous floats of B and 4 of A
;; per k, from two pointers, into a 4 × 8 tile of C held in 8 vector registers (x64 has 16,
;; which a 6 × 8 tile overflows). The packed A (64 KiB) stays in L2 while every panel passes
;; over it; a panel (8 KiB) stays in L1 while every tile does.
(module
  (import "env" "memory" (memory 0))

  ;; C[m × n] (row-major, contiguous) = A[m × k] · B[k × n]. A and B are given by address and
  ;; row and column strides, in bytes (transposed views need no copy). `pack_a` must hold
  ;; 64 · KP floats, `pack_b` KP · ⌈n / 8⌉ · 8, where KP = min(k, 256) rounded up to even.
  ;; m, n, k ≥ 1.
  (func (export "gemm")
    (param $m i32) (param $n i32) (param $k i32)
    (param $a i32) (param $ars i32) (param $acs i32)
    (param $b i32) (param $brs i32) (param $bcs i32)
    (param $c i32) (param $pack_a i32) (param $pack_b i32)
    (local $k0 i32) (local $kc i32) (local $kp i32) (local $i0 i32) (local $iend i32)
    (local $j i32) (local $i i32)
    (loop $kblocks
      ;; kc = min(256, k − k0); kp = kc rounded up to even
      (local.set $kc (select (i32.const 256) (i32.sub (local.get $k) (local.get $k0))
        (i32.lt_u (i32.const 256) (i32.sub (local.get $k) (local.get $k0)))))
      (local.set $kp (i32.and (i32.add (local.get $kc) (i32.const 1)) (i32.const -2)))
      (call $pack_b
        (i32.add (local.get $b) (i32.mul (local.get $k0) (local.get $brs)))
        (local.get $brs) (local.get $bcs) (local.get $n) (local.get $kc) (local.get $kp) (local.get $pack_b))
      (local.set $i0 (i32.const 0))
      (loop $iblocks
        ;; iend = min(i0 + 64, m)
        (local.set $iend (select (i32.add (local.get $i0) (i32.const 64)) (local.get $m)
          (i32.lt_u (i32.add (local.get $i0) (i32.const 64)) (local.get $m))))
        (call $pack_a
          (i32.add (local.get $a)
            (i32.add (i32.mul (local.get $i0) (local.get $ars)) (i32.mul (local.get $k0) (local.get $acs))))
          (local.get $ars) (local.get $acs) (i32.sub (local.get $iend) (local.get $i0))
          (local.get $kc) (local.get $kp) (local.get $pack_a))
        (local.set $j (i32.const 0))
        (loop $panels
          (local.set $i (local.get $i0))
          (loop $tiles
            (call $tile
              (i32.add (local.get $pack_a)
                (i32.shl (i32.mul (i32.sub (local.get $i) (local.get $i0)) (local.get $kp)) (i32.const 2)))
              (i32.add (local.get $pack_b) (i32.shl (i32.mul (local.get $j) (local.get $kp)) (i32.const 2)))
              (local.get $kp)
              (i32.add (local.get $c)
                (i32.shl (i32.add (i32.mul (local.get $i) (local.get $n)) (local.get $j)) (i32.const 2)))
              (i32.shl (local.get $n) (i32.const 2))
              (i32.sub (local.get $m) (local.get $i))
              (i32.sub (local.get $n) (local.get $j))
              (i32.eqz (local.get $k0)))
            (local.set $i (i32.add (local.get $i) (i32.const 4)))
            (br_if $tiles (i32.lt_u (local.get $i) (local.get $iend))))
          (local.set $j (i32.add (local.get $j) (i32.const 8)))
          (br_if $panels (i32.lt_u (local.get $j) (local.get $n))))
        (local.set $i0 (local.get $iend))
        (br_if $iblocks (i32.lt_u (local.get $i0) (local.get $m))))
      (local.set $k0 (i32.add (local.get $k0) (local.get $kc)))
      (br_if $kblocks (i32.lt_u (local.get $k0) (local.get $k)))))

  ;; Rows 0..kc of B (from address b) into 8-column panels at `out`: panel p holds columns
  ;; 8p..8p+8 of each of kp rows in turn, zeros past column n and row kc.
  (func $pack_b
    (param $b i32) (param $brs i32) (param $bcs i32) (param $n i32) (param $kc i32) (param $kp i32)
    (param $out i32)
    (local $j i32) (local $p i32) (local $src i32) (local $col i32)
    (loop $panels
      (local.set $src (i32.add (local.get $b) (i32.mul (local.get $j) (local.get $bcs))))
      (local.set $p (i32.const 0))
      (loop $rows
        (if (i32.and (i32.eq (local.get $bcs) (i32.const 4))
                     (i32.and (i32.lt_u (local.get $p) (local.get $kc))
                              (i32.le_u (i32.add (local.get $j) (i32.const 8)) (local.get $n))))
          (then
            ;; Eight contiguous columns: two vector copies.
            (v128.store (local.get $out) (v128.load (local.get $src)))
            (v128.store offset=16 (local.get $out) (v128.load offset=16 (local.get $src))))
          (else
            (local.set $col (i32.const 0))
            (loop $cols
              (f32.store
                (i32.add (local.get $out) (i32.shl (local.get $col) (i32.const 2)))
                (if (result f32) (i32.and (i32.lt_u (local.get $p) (local.get $kc))
                                          (i32.lt_u (i32.add (local.get $j) (local.get $col)) (local.get $n)))
                  (then (f32.load (i32.add (local.get $src) (i32.mul (local.get $col) (local.get $bcs)))))
                  (else (f32.const 0))))
              (br_if $cols (i32.lt_u (local.tee $col (i32.add (local.get $col) (i32.const 1))) (i32.const 8))))))
        (local.set $src (i32.add (local.get $src) (local.get $brs)))
        (local.set $out (i32.add (local.get $out) (i32.const 32)))
        (br_if $rows (i32.lt_u (local.tee $p (i32.add (local.get $p) (i32.const 1))) (local.get $kp))))
      (br_if $panels (i32.lt_u (local.tee $j (i32.add (local.get $j) (i32.const 8))) (local.get $n)))))

  ;; Columns 0..kc of `rows` rows of A (from address a) into tiles of 4 rows at `out`: tile t
  ;; holds rows 4t..4t+4 at each of kp columns in turn, zeros past row `rows` and column kc.
  (func $pack_a
    (param $a i32) (param $ars i32) (param $acs i32) (param $rows i32) (param $kc i32) (param $kp i32)
    (param $out i32)
    (local $t i32) (local $p i32) (local $r i32)
    (loop $tiles
      (local.set $p (i32.const 0))
      (loop $cols
        (local.set $r (i32.const 0))
        (loop $rows_
          (f32.store (local.get $out)
            (if (result f32) (i32.and (i32.lt_u (local.get $p) (local.get $kc))
                                      (i32.lt_u (i32.add (local.get $t) (local.get $r)) (local.get $rows)))
              (then (f32.load (i32.add (local.get $a)
                (i32.add (i32.mul (i32.add (local.get $t) (local.get $r)) (local.get $ars))
                         (i32.mul (local.get $p) (local.get $acs))))))
              (else (f32.const 0))))
          (local.set $out (i32.add (local.get $out) (i32.const 4)))
          (br_if $rows_ (i32.lt_u (local.tee $r (i32.add (local.get $r) (i32.const 1))) (i32.const 4))))
        (br_if $cols (i32.lt_u (local.tee $p (i32.add (local.get $p) (i32.const 1))) (local.get $kp))))
      (br_if $tiles (i32.lt_u (local.tee $t (i32.add (local.get $t) (i32.const 4))) (local.get $rows)))))

  ;; One 4 × 8 tile of C: Σ over kp (even) of the packed A tile at ap times the panel at bp,
  ;; two k a turn. `first`: C is written, else added to. Of the tile, `rows` rows and `cols`
  ;; columns (at most 4 and 8 are stored) lie in C.
  (func $tile
    (param $ap i32) (param $bp i32) (param $kp i32) (param $cp i32) (param $ldc i32)
    (param $rows i32) (param $cols i32) (param $first i32)
    (local $x v128) (local $b0 v128) (local $b1 v128)
    (local $c00 v128) (local $c01 v128) (local $c10 v128) (local $c11 v128)
    (local $c20 v128) (local $c21 v128) (local $c30 v128) (local $c31 v128)
    (loop $k
      (local.set $b0 (v128.load (local.get $bp)))
      (local.set $b1 (v128.load offset=16 (local.get $bp)))
      (local.set $x (v128.load32_splat (local.get $ap)))
      (local.set $c00 (f32x4.relaxed_madd (local.get $x) (local.get $b0) (local.get $c00)))
      (local.set $c01 (f32x4.relaxed_madd (local.get $x) (local.get $b1) (local.get $c01)))
      (local.set $x (v128.load32_splat offset=4 (local.get $ap)))
      (local.set $c10 (f32x4.relaxed_madd (local.get $x) (local.get $b0) (local.get $c10)))
      (local.set $c11 (f32x4.relaxed_madd (local.get $x) (local.get $b1) (local.get $c11)))
      (local.set $x (v128.load32_splat offset=8 (local.get $ap)))
      (local.set $c20 (f32x4.relaxed_madd (local.get $x) (local.get $b0) (local.get $c20)))
      (local.set $c21 (f32x4.relaxed_madd (local.get $x) (local.get $b1) (local.get $c21)))
      (local.set $x (v128.load32_splat offset=12 (local.get $ap)))
      (local.set $c30 (f32x4.relaxed_madd (local.get $x) (local.get $b0) (local.get $c30)))
      (local.set $c31 (f32x4.relaxed_madd (local.get $x) (local.get $b1) (local.get $c31)))
      (local.set $b0 (v128.load offset=32 (local.get $bp)))
      (local.set $b1 (v128.load offset=48 (local.get $bp)))
      (local.set $x (v128.load32_splat offset=16 (local.get $ap)))
      (local.set $c00 (f32x4.relaxed_madd (local.get $x) (local.get $b0) (local.get $c00)))
      (local.set $c01 (f32x4.relaxed_madd (local.get $x) (local.get $b1) (local.get $c01)))
      (local.set $x (v128.load32_splat offset=20 (local.get $ap)))
      (local.set $c10 (f32x4.relaxed_madd (local.get $x) (local.get $b0) (local.get $c10)))
      (local.set $c11 (f32x4.relaxed_madd (local.get $x) (local.get $b1) (local.get $c11)))
      (local.set $x (v128.load32_splat offset=24 (local.get $ap)))
      (local.set $c20 (f32x4.relaxed_madd (local.get $x) (local.get $b0) (local.get $c20)))
      (local.set $c21 (f32x4.relaxed_madd (local.get $x) (local.get $b1) (local.get $c21)))
      (local.set $x (v128.load32_splat offset=28 (local.get $ap)))
      (local.set $c30 (f32x4.relaxed_madd (local.get $x) (local.get $b0) (local.get $c30)))
      (local.set $c31 (f32x4.relaxed_madd (local.get $x) (local.get $b1) (local.get $c31)))
      (local.set $ap (i32.add (local.get $ap) (i32.const 32)))
      (local.set $bp (i32.add (local.get $bp) (i32.const 64)))
      (br_if $k (local.tee $kp (i32.sub (local.get $kp) (i32.const 2)))))
    (call $row (local.get $cp) (local.get $c00) (local.get $c01) (local.get $cols) (local.get $first))
    (if (i32.gt_u (local.get $rows) (i32.const 1)) (then
      (call $row (i32.add (local.get $cp) (local.get $ldc))
        (local.get $c10) (local.get $c11) (local.get $cols) (local.get $first))))
    (if (i32.gt_u (local.get $rows) (i32.const 2)) (then
      (call $row (i32.add (local.get $cp) (i32.shl (local.get $ldc) (i32.const 1)))
        (local.get $c20) (local.get $c21) (local.get $cols) (local.get $first))))
    (if (i32.gt_u (local.get $rows) (i32.const 3)) (then
      (call $row (i32.add (local.get $cp) (i32.mul (local.get $ldc) (i32.const 3)))
        (local.get $c30) (local.get $c31) (local.get $cols) (local.get $first)))))

  ;; Stores (first) or adds (else) one tile row `lo hi` at cp: 8 floats, or the first `cols`.
  (func $row (param $cp i32) (param $lo v128) (param $hi v128) (param $cols i32) (param $first i32)
    (if (i32.ge_u (local.get $cols) (i32.const 8))
      (then
        (if (i32.eqz (local.get $first)) (then
          (local.set $lo (f32x4.add (local.get $lo) (v128.load (local.get $cp))))
          (local.set $hi (f32x4.add (local.get $hi) (v128.load offset=16 (local.get $cp))))))
        (v128.store (local.get $cp) (local.get $lo))
        (v128.store offset=16 (local.get $cp) (local.get $hi)))
      (else
        (call $lane (local.get $cp) (f32x4.extract_lane 0 (local.get $lo)) (local.get $first))
        (br_if 0 (i32.le_u (local.get $cols) (i32.const 1)))
        (call $lane (i32.add (local.get $cp) (i32.const 4)) (f32x4.extract_lane 1 (local.get $lo)) (local.get $first))
        (br_if 0 (i32.le_u (local.get $cols) (i32.const 2)))
        (call $lane (i32.add (local.get $cp) (i32.const 8)) (f32x4.extract_lane 2 (local.get $lo)) (local.get $first))
        (br_if 0 (i32.le_u (local.get $cols) (i32.const 3)))
        (call $lane (i32.add (local.get $cp) (i32.const 12)) (f32x4.extract_lane 3 (local.get $lo)) (local.get $first))
        (br_if 0 (i32.le_u (local.get $cols) (i32.const 4)))
        (call $lane (i32.add (local.get $cp) (i32.const 16)) (f32x4.extract_lane 0 (local.get $hi)) (local.get $first))
        (br_if 0 (i32.le_u (local.get $cols) (i32.const 5)))
        (call $lane (i32.add (local.get $cp) (i32.const 20)) (f32x4.extract_lane 1 (local.get $hi)) (local.get $first))
        (br_if 0 (i32.le_u (local.get $cols) (i32.const 6)))
        (call $lane (i32.add (local.get $cp) (i32.const 24)) (f32x4.extract_lane 2 (local.get $hi)) (local.get $first)))))

  (func $lane (param $p i32) (param $v f32) (param $first i32)
    (f32.store (local.get $p)
      (if (result f32) (local.get $first)
        (then (local.get $v))
        (else (f32.add (local.get $v) (f32.load (local.get $p))))))))
