;; The page's matrix product: C = A · B in f32 with wasm's relaxed-SIMD fused multiply-add,
;; which neither Rust's stable wasm target nor gemm's kernels emit. A module of its own because a
;; module using relaxed SIMD does not validate in browsers without it (fused/wasm_matmul.rs checks,
;; and falls back to gemm). It runs on the worker's memory (imported): it has no data, no globals
;; and no stack, so it writes nothing but C and the packing buffer it is given.
;;
;; Blocking: B is packed, KC rows at a time, into panels of 8 columns (zero-padded), so the inner
;; loop reads 8 contiguous floats of B and one float from each of 4 rows of A; a 4 × 8 tile of C
;; lives in 8 vector registers (x64 has 16, which a 6 × 8 tile overflows). Rows of A are taken MC
;; at a time, so the rows' KC-long stretches stay in L2 while every panel passes over them.
(module
  (import "env" "memory" (memory 0))

  ;; C[m × n] (row-major, contiguous) = A[m × k] · B[k × n]. A and B are given by address and
  ;; row and column strides, in bytes (transposed views need no copy). `pack` must hold
  ;; min(k, 256) · ⌈n / 8⌉ · 8 floats. k ≥ 1.
  (func (export "gemm")
    (param $m i32) (param $n i32) (param $k i32)
    (param $a i32) (param $ars i32) (param $acs i32)
    (param $b i32) (param $brs i32) (param $bcs i32)
    (param $c i32) (param $pack i32)
    (local $k0 i32) (local $kc i32) (local $i0 i32) (local $iend i32) (local $j i32) (local $i i32)
    (loop $kblocks
      ;; kc = min(256, k − k0)
      (local.set $kc (select (i32.const 256) (i32.sub (local.get $k) (local.get $k0))
        (i32.lt_u (i32.const 256) (i32.sub (local.get $k) (local.get $k0)))))
      (call $pack
        (i32.add (local.get $b) (i32.mul (local.get $k0) (local.get $brs)))
        (local.get $brs) (local.get $bcs) (local.get $n) (local.get $kc) (local.get $pack))
      (local.set $i0 (i32.const 0))
      (loop $iblocks
        ;; iend = min(i0 + 64, m)
        (local.set $iend (select (i32.add (local.get $i0) (i32.const 64)) (local.get $m)
          (i32.lt_u (i32.add (local.get $i0) (i32.const 64)) (local.get $m))))
        (local.set $j (i32.const 0))
        (loop $panels
          (local.set $i (local.get $i0))
          (loop $tiles
            (call $tile
              (i32.add (local.get $a)
                (i32.add (i32.mul (local.get $i) (local.get $ars)) (i32.mul (local.get $k0) (local.get $acs))))
              (local.get $ars) (local.get $acs)
              (i32.sub (local.get $m) (local.get $i))
              (i32.add (local.get $pack) (i32.shl (i32.mul (local.get $j) (local.get $kc)) (i32.const 2)))
              (local.get $kc)
              (i32.add (local.get $c)
                (i32.shl (i32.add (i32.mul (local.get $i) (local.get $n)) (local.get $j)) (i32.const 2)))
              (i32.shl (local.get $n) (i32.const 2))
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
  ;; 8p..8p+8 of each row in turn, zeros past column n.
  (func $pack
    (param $b i32) (param $brs i32) (param $bcs i32) (param $n i32) (param $kc i32) (param $out i32)
    (local $j i32) (local $p i32) (local $src i32) (local $col i32)
    (loop $panels
      (local.set $src (i32.add (local.get $b) (i32.mul (local.get $j) (local.get $bcs))))
      (local.set $p (local.get $kc))
      (if (i32.and (i32.eq (local.get $bcs) (i32.const 4))
                   (i32.le_u (i32.add (local.get $j) (i32.const 8)) (local.get $n)))
        (then
          ;; Eight contiguous columns: two vector copies per row.
          (loop $rows
            (v128.store (local.get $out) (v128.load (local.get $src)))
            (v128.store offset=16 (local.get $out) (v128.load offset=16 (local.get $src)))
            (local.set $src (i32.add (local.get $src) (local.get $brs)))
            (local.set $out (i32.add (local.get $out) (i32.const 32)))
            (br_if $rows (local.tee $p (i32.sub (local.get $p) (i32.const 1))))))
        (else
          (loop $rows
            (local.set $col (i32.const 0))
            (loop $cols
              (f32.store
                (i32.add (local.get $out) (i32.shl (local.get $col) (i32.const 2)))
                (if (result f32) (i32.lt_u (i32.add (local.get $j) (local.get $col)) (local.get $n))
                  (then (f32.load (i32.add (local.get $src) (i32.mul (local.get $col) (local.get $bcs)))))
                  (else (f32.const 0))))
              (br_if $cols (i32.lt_u (local.tee $col (i32.add (local.get $col) (i32.const 1))) (i32.const 8))))
            (local.set $src (i32.add (local.get $src) (local.get $brs)))
            (local.set $out (i32.add (local.get $out) (i32.const 32)))
            (br_if $rows (local.tee $p (i32.sub (local.get $p) (i32.const 1)))))))
      (br_if $panels (i32.lt_u (local.tee $j (i32.add (local.get $j) (i32.const 8))) (local.get $n)))))

  ;; One 4 × 8 tile of C: Σ over kc of A's rows (from a0, stride ars; `rows` of them are real,
  ;; the rest re-read row 0 and are not stored) times the panel at bp. `first`: C is written,
  ;; else added to. cols = columns left in C from this tile's first (stored: at most 8).
  (func $tile
    (param $a0 i32) (param $ars i32) (param $acs i32) (param $rows i32)
    (param $bp i32) (param $kc i32) (param $cp i32) (param $ldc i32) (param $cols i32) (param $first i32)
    (local $a1 i32) (local $a2 i32) (local $a3 i32) (local $x v128) (local $b0 v128) (local $b1 v128)
    (local $c00 v128) (local $c01 v128) (local $c10 v128) (local $c11 v128)
    (local $c20 v128) (local $c21 v128) (local $c30 v128) (local $c31 v128)
    (local.set $a1 (select (i32.add (local.get $a0) (local.get $ars)) (local.get $a0)
      (i32.gt_u (local.get $rows) (i32.const 1))))
    (local.set $a2 (select (i32.add (local.get $a1) (local.get $ars)) (local.get $a0)
      (i32.gt_u (local.get $rows) (i32.const 2))))
    (local.set $a3 (select (i32.add (local.get $a2) (local.get $ars)) (local.get $a0)
      (i32.gt_u (local.get $rows) (i32.const 3))))
    (loop $k
      (local.set $b0 (v128.load (local.get $bp)))
      (local.set $b1 (v128.load offset=16 (local.get $bp)))
      (local.set $x (v128.load32_splat (local.get $a0)))
      (local.set $c00 (f32x4.relaxed_madd (local.get $x) (local.get $b0) (local.get $c00)))
      (local.set $c01 (f32x4.relaxed_madd (local.get $x) (local.get $b1) (local.get $c01)))
      (local.set $x (v128.load32_splat (local.get $a1)))
      (local.set $c10 (f32x4.relaxed_madd (local.get $x) (local.get $b0) (local.get $c10)))
      (local.set $c11 (f32x4.relaxed_madd (local.get $x) (local.get $b1) (local.get $c11)))
      (local.set $x (v128.load32_splat (local.get $a2)))
      (local.set $c20 (f32x4.relaxed_madd (local.get $x) (local.get $b0) (local.get $c20)))
      (local.set $c21 (f32x4.relaxed_madd (local.get $x) (local.get $b1) (local.get $c21)))
      (local.set $x (v128.load32_splat (local.get $a3)))
      (local.set $c30 (f32x4.relaxed_madd (local.get $x) (local.get $b0) (local.get $c30)))
      (local.set $c31 (f32x4.relaxed_madd (local.get $x) (local.get $b1) (local.get $c31)))
      (local.set $a0 (i32.add (local.get $a0) (local.get $acs)))
      (local.set $a1 (i32.add (local.get $a1) (local.get $acs)))
      (local.set $a2 (i32.add (local.get $a2) (local.get $acs)))
      (local.set $a3 (i32.add (local.get $a3) (local.get $acs)))
      (local.set $bp (i32.add (local.get $bp) (i32.const 32)))
      (br_if $k (local.tee $kc (i32.sub (local.get $kc) (i32.const 1)))))
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
