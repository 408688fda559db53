"""kafka-python against a kafkit broker: admin, gzip producer with headers,
consumer group with commits, group admin, configs, topic deletion.
Usage: kafka_python_smoke.py host:port; exits non-zero on any mismatch."""
import sys
from kafka import KafkaProducer, KafkaConsumer, KafkaAdminClient
from kafka.admin import NewTopic, ConfigResource

b = sys.argv[1]
admin = KafkaAdminClient(bootstrap_servers=b)
admin.create_topics([NewTopic('kp', 2, 1)])
assert 'kp' in admin.list_topics()
p = KafkaProducer(bootstrap_servers=b, acks='all', compression_type='gzip')
for i in range(500):
    p.send('kp', key=str(i % 5).encode(), value=('v%d' % i).encode(), headers=[('h', b'x')])
p.flush()
c = KafkaConsumer('kp', bootstrap_servers=b, group_id='kpg', auto_offset_reset='earliest',
                  consumer_timeout_ms=5000, enable_auto_commit=False)
values = set()
for m in c:
    assert m.headers == [('h', b'x')], m.headers
    values.add(m.value)
c.commit()
c.close()
assert values == {('v%d' % i).encode() for i in range(500)}, len(values)
assert ('kpg', 'consumer') in admin.list_consumer_groups()
offsets = {tp.partition: o.offset for tp, o in admin.list_consumer_group_offsets('kpg').items()}
assert sum(offsets.values()) == 500, offsets
configs = dict((e[0], e[1]) for e in admin.describe_configs([ConfigResource('TOPIC', 'kp')])[0].resources[0][4])
assert configs['cleanup.policy'] == 'delete', configs
admin.delete_topics(['kp'])
print('ok')
