// Package metadata is the cluster's metadata as KRaft keeps it: an image of
// the registered brokers, topics, partitions (replicas, ISR, leader, epochs)
// and dynamic configs, changed only by applying records in log order. On a
// cluster the records are the entries of a Raft log (hashicorp/raft, FSM in
// fsm.go) that the active controller appends; every node applies the same
// log to the same image, so every node's image is the same at the same
// offset. The controller's decisions (placement, elections, fencing) are
// pure functions in controller.go that read an image and return records.
//
// # Record encoding
//
// kmsg has KRaft's RPCs but not its metadata records, so the records have
// an encoding of their own, written with franz-go's kbin primitives (Kafka's
// big-endian integers, varints and length-prefixed strings). A Raft log
// entry, and a snapshot, is a batch:
//
//	batch  := magic:int8(0x6b) count:uvarint record*
//	record := type:uvarint version:uvarint body
//
// A reader that meets a type or a version it does not know fails with
// ErrUnknownRecord and applies nothing of that entry past it: a node must
// not run with an image it cannot read. Type numbers are KRaft's
// (MetadataRecordType). Version 0 bodies, in field order (arrays are a uvarint
// count then the elements; a nullable array or string has count or length
// 0 for null and n+1 otherwise):
//
//	 0 RegisterBroker   id:int32 incarnation:uuid epoch:int64 rack:string
//	                    listeners:[name:string host:string port:int32 protocol:int16]
//	                    fenced:bool
//	 1 UnregisterBroker id:int32 epoch:int64
//	 2 Topic            name:string id:uuid
//	 3 Partition        topic:uuid partition:int32 replicas:[int32] isr:[int32]
//	                    adding:[int32] removing:[int32] leader:int32
//	                    leaderEpoch:int32 partitionEpoch:int32
//	 4 Config           resourceType:int8 resourceName:string name:string
//	                    value:nullable string (null deletes the key)
//	 5 PartitionChange  topic:uuid partition:int32 leader:int32 (-2 unchanged)
//	                    isr, replicas, adding, removing: nullable [int32]
//	                    (null unchanged)
//	 9 RemoveTopic      id:uuid
//	12 FeatureLevel     name:string level:int16 (features.go: level 0 of a
//	                    feature other than metadata.version removes it)
//	11 UserSCRAMCredential name:string mechanism:int8 (1 SCRAM-SHA-256,
//	                    2 SCRAM-SHA-512) salt:bytes storedKey:bytes
//	                    serverKey:bytes iterations:int32 (never a password)
//	14 ClientQuota      entity:[type:string name:nullable string (null: the
//	                    default)] key:string value:float64 remove:bool
//	15 ProducerIDs      broker:int32 brokerEpoch:int64 nextProducerID:int64
//	17 BrokerChange     id:int32 epoch:int64 fenced:int8 shuttingDown:int8
//	                    (-1 unchanged, 0 false, 1 true)
//	18 AccessControlEntry id:uuid resourceType:int8 resourceName:string
//	                    patternType:int8 principal:string host:string
//	                    operation:int8 permission:int8 (kmsg's ACL codes)
//	19 RemoveAccessControlEntry id:uuid
//	22 RemoveUserSCRAMCredential name:string mechanism:int8
//
// bytes is a uvarint length then the bytes; float64 is IEEE 754 big
// endian (a NaN quota does not decode).
//
// Applying a PartitionChange raises the partition epoch by one, and the
// leader epoch by one when it names a leader (even the same one), as
// KRaft's PartitionChangeRecord does.
//
// The security records (records_security.go) hold what Kafka's
// ScramControlManager, AclControlManager and ClientQuotaControlManager
// keep: every node's SASL listeners, authorizer and quota enforcement read
// them from its image, so a credential, ACL or quota set through any node
// holds on all of them. Image.Security.Offset is the offset of the last
// batch that changed them.
package metadata
