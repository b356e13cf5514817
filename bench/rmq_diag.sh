# bench/rmq_diag.sh - sourced by bench/rabbitmq-http when RMQ_DIAG=1: what the garbage collector
# does in the process of queue 'bench', from the end of its preload to the end of triggerd's drain, in
# $TMP/diag/gc.txt (keep it with KEEP=1). A tracer inside the node records every GC of that
# process (minor or major, its time, the heap, and the binaries its old generation references
# against the limit that forces a major GC: bin_old_vheap_size / bin_old_vheap_block_size, in
# words); microstate accounting covers the drain. rabbitmqctl eval costs CPU of its own, so the
# figures are read only before and after the drain, never inside it.
DIAG_TRACE='
{ok, Q} = rabbit_amqqueue:lookup(rabbit_misc:r(<<"/">>, queue, <<"bench">>)),
P = amqqueue:get_pid(Q),
catch exit(whereis(diag_gc_tracer), kill),
T0 = erlang:monotonic_time(),
Ms = fun(TS) -> erlang:convert_time_unit(TS - T0, native, millisecond) end,
Us = fun(TS, S) -> erlang:convert_time_unit(TS - maps:get(t, S), native, microsecond) end,
Add = fun(K, N, S) -> maps:update_with(K, fun(V) -> V + N end, N, S) end,
T = spawn(fun() ->
  Loop = fun L(S) ->
    receive
      {trace_ts, _, Ev, Info, TS} when Ev =:= gc_major_start; Ev =:= gc_minor_start ->
        K = case Ev of gc_major_start -> major; _ -> minor end,
        G = fun(I) -> proplists:get_value(I, Info) end,
        E = {K, Ms(TS), G(heap_size) + G(old_heap_size), G(bin_old_vheap_size), G(bin_old_vheap_block_size)},
        L(Add({maps:get(phase, S), K}, 1, S#{t => TS, ev => [E | maps:get(ev, S)]}));
      {trace_ts, _, Ev, _, TS} when Ev =:= gc_major_end; Ev =:= gc_minor_end ->
        K = case Ev of gc_major_end -> major_us; _ -> minor_us end,
        L(Add({maps:get(phase, S), K}, Us(TS, S), S));
      {trace_ts, _, _, _, _} -> L(S);
      {phase, Ph} -> L(S#{phase => Ph, ev => [{Ph, Ms(erlang:monotonic_time())} | maps:get(ev, S)]});
      {get, From} -> From ! {gc, S#{ev => lists:reverse(maps:get(ev, S))}}, L(S)
    end
  end,
  Loop(#{phase => preload, ev => []})
end),
register(diag_gc_tracer, T),
erlang:trace(P, true, [garbage_collection, monotonic_timestamp, {tracer, T}]),
ok.'
# Read without waking the queue process (process_info does not end its hibernation).
DIAG_BEFORE='
{ok, Q} = rabbit_amqqueue:lookup(rabbit_misc:r(<<"/">>, queue, <<"bench">>)),
diag_gc_tracer ! {phase, drain},
erlang:system_flag(microstate_accounting, reset),
erlang:system_flag(microstate_accounting, true),
erlang:process_info(amqqueue:get_pid(Q), [current_function, total_heap_size, garbage_collection_info]).'
DIAG_AFTER='
erlang:system_flag(microstate_accounting, false),
MS = erlang:statistics(microstate_accounting),
Sum = lists:foldl(fun(#{type := Ty, counters := C}, A) ->
        maps:fold(fun(St, V, A2) -> K = {Ty, St},
          A2#{K => maps:get(K, A2, 0) + erlang:convert_time_unit(V, perf_counter, microsecond)} end, A, C)
      end, #{}, MS),
diag_gc_tracer ! {get, self()},
G = receive {gc, X} -> X after 2000 -> timeout end,
{ok, Q} = rabbit_amqqueue:lookup(rabbit_misc:r(<<"/">>, queue, <<"bench">>)),
catch erlang:trace(amqqueue:get_pid(Q), false, [garbage_collection]),
exit(whereis(diag_gc_tracer), kill),
[{msacc_busy_us_during_drain, lists:sort([{K, V} || {K = {_, St}, V} <- maps:to_list(Sum), St =/= sleep, V > 1000])},
 {gc_of_queue_bench, maps:without([ev, t], G)},
 {gc_events, maps:get(ev, G)}].'
mkdir -p "$TMP/diag"
diag() { # LABEL EXPR
  { echo "== $1 $(date +%T.%N)"; ctl eval "$2" 2>&1 || echo "(eval failed)"; } >>"$TMP/diag/gc.txt"
}
